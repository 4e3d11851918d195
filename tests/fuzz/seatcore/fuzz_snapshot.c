/* fuzz_snapshot.c — libFuzzer target: the snapshot loader past its checksum.
 *
 * fuzz_recovery writes the fuzzer's bytes as a snapshot too, but a snapshot ends
 * with a CRC32C of everything before it, so nearly every mutation is refused at
 * the checksum and the parser behind it (events, hold slots, seat words, users,
 * queues, idempotency answers) is never reached. Here the input is a snapshot
 * *without* its checksum: the target appends the right one, so every byte of the
 * input reaches the parser. A snapshot that passes its checksum but does not
 * make sense (bit rot the CRC missed, a bug in an older writer, a hand-edited
 * file) must be refused or loaded into a consistent engine, never crash it,
 * then or later: the loaded engine is put to work (holds on every event,
 * releases, confirms, queue joins, expiry of the loaded holds, a new snapshot)
 * and its counts are checked after every step. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seatcore.h"
#include "tk_codec.h"
#include "wal_io_sim.h"

#define EVENTS_CHECKED_MAX 8u

static void quiet(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

static void write_snapshot(struct wal_io *io, const uint8_t *data, size_t size)
{
    uint8_t *file = malloc(size + 4);
    if (file == NULL)
        abort();
    memcpy(file, data, size);
    uint32_t crc = tk_crc32c(0, data, size);
    for (int i = 0; i < 4; i++)
        file[size + i] = (uint8_t)(crc >> (8 * i));
    int h = io->open(io, "/d/snap-0000000000000000.snap", WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    if (h < 0)
        abort();
    struct iovec iov = {.iov_base = file, .iov_len = size + 4};
    if (wal_io_pwritev_all(io, h, &iov, 1, 0) != 0)
        abort();
    io->fdatasync(io, h);
    io->close(io, h);
    io->sync_dir(io, "/d");
    free(file);
}

/* free + held + sold == capacity for every event, whatever was loaded. */
static void check_counts(struct sc_engine *engine)
{
    uint64_t ids[EVENTS_CHECKED_MAX];
    uint32_t n = sc_event_list(engine, ids, EVENTS_CHECKED_MAX);
    for (uint32_t i = 0; i < n && i < EVENTS_CHECKED_MAX; i++) {
        struct sc_event_info info;
        if (sc_event_get(engine, ids[i], &info) != TK_OK)
            __builtin_trap(); /* listed, so it exists */
        if (info.counts.free + info.counts.held + info.counts.sold != info.counts.capacity)
            __builtin_trap();
    }
}

/* Every operation a client could ask for, on every loaded event. */
static void exercise(struct sc_engine *engine, struct tk_clock_manual *clock)
{
    uint64_t ids[EVENTS_CHECKED_MAX], lsn;
    uint32_t n = sc_event_list(engine, ids, EVENTS_CHECKED_MAX);
    for (uint32_t i = 0; i < n && i < EVENTS_CHECKED_MAX; i++) {
        struct sc_hold_result result;
        struct sc_hold_request best = {.event_id = ids[i], .user_id = 77, .best_count = 2, .best_section = -1};
        if (sc_hold(engine, &best, &result, &lsn) == TK_OK)
            sc_release(engine, ids[i], 77, result.hold_id, &lsn);
        struct sc_hold_request seat = {.event_id = ids[i], .user_id = 78, .seat_count = 1, .seats = {0}};
        if (sc_hold(engine, &seat, &result, &lsn) == TK_OK)
            sc_confirm(engine, ids[i], 78, result.hold_id, 0, &result, &lsn);
        for (uint32_t s = 0; s < 4; s++) {
            struct sc_hold_info hold;
            if (sc_seat_hold_get(engine, ids[i], s, &hold) == TK_OK) {
                sc_hold_get(engine, ids[i], hold.hold_id, &hold);
                sc_release(engine, ids[i], hold.user_id, hold.hold_id, &lsn);
            }
            enum sc_seat_state state;
            uint64_t user;
            if (sc_seat_get(engine, ids[i], s, &state, &user) == TK_OK && state == SC_SEAT_SOLD)
                sc_return_seat(engine, ids[i], user, s, &lsn);
        }
        struct sc_queue_view view;
        sc_queue_join(engine, ids[i], 79, &view, &lsn);
        sc_queue_status(engine, ids[i], 79, &view, &lsn);
        struct sc_queue_info info;
        sc_queue_info(engine, ids[i], &info);
        struct sc_queue_admission admissions[4];
        uint32_t count, next;
        sc_queue_admitted(engine, ids[i], 0, admissions, 4, &count, &next);
        uint8_t states[1024];
        uint64_t version;
        struct sc_counts counts;
        sc_availability_copy(engine, ids[i], states, sizeof(states), &version, &counts);
    }
    check_counts(engine);
    /* Loaded holds expire and loaded queues admit: an hour later, a few ticks. */
    for (int t = 0; t < 3; t++) {
        tk_clock_manual_advance(clock, 1200000);
        sc_engine_tick(engine);
        check_counts(engine);
    }
    if (sc_engine_snapshot(engine) != TK_OK)
        __builtin_trap(); /* what loaded must be writable again */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    struct wal_io_sim *sim = wal_io_sim_create(1);
    struct wal_io *io = wal_io_sim_io(sim);
    io->mkdirs(io, "/d");
    write_snapshot(io, data, size);
    struct tk_clock_manual clock;
    tk_clock_manual_init(&clock, 1700000000000LL);
    uint8_t key[32] = {7};
    struct sc_engine_config config = {.clock = &clock.base, .io = io, .data_dir = "/d", .idempotency_keys = 1024,
                                      .wal_ring_bytes = TK_WAL_RING_BYTES_MIN, .token_key = key,
                                      .token_key_len = sizeof(key), .log = quiet, .events_max = EVENTS_CHECKED_MAX};
    struct sc_engine *engine = NULL;
    char err[256];
    if (sc_engine_open(&engine, &config, err, sizeof(err)) == TK_OK) {
        check_counts(engine);
        exercise(engine, &clock);
        sc_engine_close(engine);
    }
    wal_io_destroy(io);
    return 0;
}
