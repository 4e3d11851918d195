/* make_seeds.c — writes the seed corpora of the seatcore fuzz targets from a
 * real engine session: a WAL segment and a snapshot with every record type
 * (events with and without a waiting room, holds, confirms, releases, expiries,
 * returns, joins, admissions, leaves), plus single encoded records. The
 * events allow 64 users, so an engine opened from a seed allocates little and
 * the fuzzers run many inputs a second.
 *   make_seeds CORPUS_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "seatcore.h"

/* Copies from into dir/name after a prefix byte (-1: none), less its last strip bytes. */
static void save_part(const char *dir, const char *name, int prefix, const char *from, size_t strip)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *in = fopen(from, "rb"), *out = fopen(path, "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "make_seeds: cannot copy %s to %s\n", from, path);
        exit(1);
    }
    if (prefix >= 0)
        fputc(prefix, out);
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof(buf), in);
    fwrite(buf, 1, n > strip ? n - strip : 0, out);
    fclose(in);
    fclose(out);
}

static void save(const char *dir, const char *name, uint8_t prefix, const char *from)
{
    save_part(dir, name, prefix, from, 0);
}

static void session(const char *data_dir)
{
    struct tk_clock_manual clock;
    tk_clock_manual_init(&clock, 1700000000000LL);
    uint8_t key[32] = {7};
    struct sc_engine_config config = {.clock = &clock.base, .data_dir = data_dir, .idempotency_keys = 1024,
                                      .token_key = key, .token_key_len = 32, .events_max = 8};
    struct sc_engine *engine;
    char err[256];
    if (sc_engine_open(&engine, &config, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "make_seeds: %s\n", err);
        exit(1);
    }
    struct sc_event_spec spec = {.event_id = 5, .section_count = 1, .hold_ttl_ms = 5000, .users_max = 64};
    spec.sections[0] = (struct sc_section_spec){"A", 2, 5, 1500};
    uint64_t lsn;
    sc_event_create(engine, &spec, &lsn);
    spec.event_id = 6;
    spec.queue = (struct sc_queue_spec){.enabled = true, .admit_per_s = 5, .max_active = 5, .length_max = 64};
    sc_event_create(engine, &spec, &lsn);
    struct sc_hold_result r;
    for (uint32_t i = 0; i < 6; i++) {
        struct sc_hold_request req = {.event_id = 5, .user_id = 1 + i, .seat_count = 1, .seats = {i},
                                      .idempotency_key = i % 2 ? 100 + i : 0};
        sc_hold(engine, &req, &r, &lsn);
        if (i % 3 == 0)
            sc_confirm(engine, 5, 1 + i, r.hold_id, 9, &r, &lsn);
        else if (i % 3 == 1)
            sc_release(engine, 5, 1 + i, r.hold_id, &lsn);
    }
    sc_return_seat(engine, 5, 1, 0, &lsn);
    struct sc_queue_view view;
    for (uint64_t u = 1; u <= 4; u++)
        sc_queue_join(engine, 6, u, &view, &lsn);
    sc_queue_leave(engine, 6, 2, &lsn);
    sc_engine_snapshot(engine);
    tk_clock_manual_advance(&clock, 6000);
    sc_engine_tick(engine);
    sc_engine_wait_durable(engine, sc_engine_tick(engine));
    sc_event_close(engine, 5, &lsn);
    sc_engine_wait_durable(engine, lsn);
    sc_engine_close(engine);
}

static void save_record(const char *dir, const char *name, const uint8_t *bytes, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    fwrite(bytes, 1, len, out);
    fclose(out);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
        return 2;
    }
    char dir[4096], data[4096], target[4096], cmd[8300];
    snprintf(data, sizeof(data), "%s/.session", argv[1]);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' '%s/fuzz_recovery' '%s/fuzz_wal_record' '%s/fuzz_token' '%s/fuzz_snapshot'",
             data, data, argv[1], argv[1], argv[1], argv[1]);
    if (system(cmd) != 0)
        return 1;
    session(data);
    snprintf(dir, sizeof(dir), "%s/fuzz_recovery", argv[1]);
    snprintf(target, sizeof(target), "%s/wal-0000000000000000.log", data);
    save(dir, "wal-session", 0, target);
    snprintf(cmd, sizeof(cmd), "ls '%s'/snap-*.snap | head -1", data);
    FILE *p = popen(cmd, "r");
    if (p != NULL && fgets(target, sizeof(target), p) != NULL) {
        target[strcspn(target, "\n")] = '\0';
        save(dir, "snapshot-session", 1, target);
        /* fuzz_snapshot appends the checksum itself */
        snprintf(dir, sizeof(dir), "%s/fuzz_snapshot", argv[1]);
        save_part(dir, "snapshot-session", -1, target, 4);
    }
    if (p != NULL)
        pclose(p);
    snprintf(dir, sizeof(dir), "%s/fuzz_wal_record", argv[1]);
    uint8_t bytes[REC_PAYLOAD_BYTES_MAX];
    struct tk_buf buf;
    struct rec_hold hold = {.event_id = 5, .slot = 1, .gen = 2, .user_id = 3, .at_ms = 4, .expires_at_ms = 5,
                            .seat_count = 2, .seats = {{1, 2}, {3, 4}}};
    tk_buf_init(&buf, bytes, sizeof(bytes));
    rec_encode_hold(&buf, &hold);
    save_record(dir, "hold", bytes, buf.len);
    struct rec_hold_end end = {.event_id = 5, .slot = 1, .gen = 2, .kind = REC_END_CONFIRMED, .user_id = 3,
                               .seat_count = 1, .seats = {{1, 3}}};
    tk_buf_init(&buf, bytes, sizeof(bytes));
    rec_encode_hold_end(&buf, &end);
    save_record(dir, "hold_end", bytes, buf.len);
    snprintf(dir, sizeof(dir), "%s/fuzz_token", argv[1]);
    save_record(dir, "token", (const uint8_t *)"AQUAAAAAAAAAAwAAAAAAAAABAAAAAAAAAGi2xf2LAQAAi9Xn4dCh2O3o4Mvb6c3w9Pq9f1XyDyB0Fz4l7z6qYw",
                87);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data);
    return system(cmd) == 0 ? 0 : 1;
}
