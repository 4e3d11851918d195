/* fuzz_recovery.c — libFuzzer target: recovery from a data directory whose WAL
 * segment (first byte even) or snapshot (first byte odd) holds the fuzzer's
 * bytes, on the simulated disk. Recovery may refuse (corruption) but must
 * never crash, hang or break an invariant; an engine that opens must work. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "seatcore.h"
#include "wal_io_sim.h"

static int write_file(struct wal_io *io, const char *path, const uint8_t *data, size_t size)
{
    int h = io->open(io, path, WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    if (h < 0)
        return -1;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
    int rc = size ? wal_io_pwritev_all(io, h, &iov, 1, 0) : 0;
    io->fdatasync(io, h);
    io->close(io, h);
    io->sync_dir(io, "/d");
    return rc;
}

static void quiet(void *ctx, const char *level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    struct wal_io_sim *sim = wal_io_sim_create(1);
    struct wal_io *io = wal_io_sim_io(sim);
    io->mkdirs(io, "/d");
    const char *path = data[0] & 1 ? "/d/snap-0000000000000000.snap" : "/d/wal-0000000000000000.log";
    write_file(io, path, data + 1, size - 1);
    struct tk_clock_manual clock;
    tk_clock_manual_init(&clock, 1700000000000LL);
    uint8_t key[32] = {1};
    struct sc_engine_config config = {.clock = &clock.base, .io = io, .data_dir = "/d", .idempotency_keys = 1024,
                                      .wal_ring_bytes = TK_WAL_RING_BYTES_MIN, .token_key = key,
                                      .token_key_len = sizeof(key), .log = quiet, .events_max = 8};
    struct sc_engine *engine = NULL;
    char err[256];
    if (sc_engine_open(&engine, &config, err, sizeof(err)) == TK_OK) {
        uint64_t ids[8];
        uint32_t n = sc_event_list(engine, ids, 8);
        for (uint32_t i = 0; i < n && i < 8; i++) {
            struct sc_event_info info;
            if (sc_event_get(engine, ids[i], &info) == TK_OK &&
                info.counts.free + info.counts.held + info.counts.sold != info.counts.capacity)
                __builtin_trap();
        }
        sc_engine_tick(engine);
        sc_engine_close(engine);
    }
    wal_io_destroy(io);
    return 0;
}
