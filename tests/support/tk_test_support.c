/* tk_test_support.c — helpers for the criterion tests (see tk_test_support.h). */
#include "tk_test_support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tk_assert.h"

void tk_test_tempdir(char *out, size_t out_len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(out, out_len, "%s/tiketi-test-%s-XXXXXX", base, tag);
    TK_ASSERT(n > 0 && (size_t)n < out_len);
    TK_ASSERT(mkdtemp(out) != NULL);
}

static int rmtree_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tk_test_rmtree(const char *path)
{
    TK_ASSERT(path != NULL && strstr(path, "tiketi-test-") != NULL); /* never remove anything else */
    nftw(path, rmtree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t tk_test_rand(uint64_t *state)
{
    TK_ASSERT(*state != 0);
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

uint64_t tk_test_seed(const char *test_name)
{
    const char *env = getenv("TK_TEST_SEED");
    uint64_t seed;
    if (env != NULL && env[0] != '\0') {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    if (seed == 0)
        seed = 1;
    fprintf(stderr, "%s: seed %llu (replay with TK_TEST_SEED=%llu)\n", test_name, (unsigned long long)seed,
            (unsigned long long)seed);
    return seed;
}

void tk_test_spec(struct sc_event_spec *spec, uint64_t event_id, uint32_t sections, uint32_t rows,
                  uint32_t seats_per_row)
{
    TK_ASSERT(sections >= 1 && sections <= TK_SECTIONS_PER_EVENT_MAX);
    memset(spec, 0, sizeof(*spec));
    spec->event_id = event_id;
    spec->section_count = sections;
    for (uint32_t s = 0; s < sections; s++) {
        snprintf(spec->sections[s].name, sizeof(spec->sections[s].name), "S%u", s);
        spec->sections[s].rows = rows;
        spec->sections[s].seats_per_row = seats_per_row;
        spec->sections[s].price_cents = 1000 + 100 * s;
    }
    spec->hold_ttl_ms = 60000;
}

struct sc_engine *tk_test_engine(struct tk_clock_manual *clock, const struct sc_engine_config *engine_config)
{
    tk_clock_manual_init(clock, 1700000000000LL);
    struct sc_engine_config config = {0};
    if (engine_config != NULL)
        config = *engine_config;
    config.clock = &clock->base;
    if (config.idempotency_keys == 0)
        config.idempotency_keys = 1u << 12;
    struct sc_engine *engine = NULL;
    char err[256];
    enum tk_status status = sc_engine_open(&engine, &config, err, sizeof(err));
    if (status != TK_OK)
        fprintf(stderr, "sc_engine_open: %s: %s\n", tk_status_name(status), err);
    TK_ASSERT(status == TK_OK);
    return engine;
}

enum tk_status tk_test_hold(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, const uint32_t *seats,
                            uint32_t count, uint64_t *hold_id)
{
    struct sc_hold_request request = {.event_id = event_id, .user_id = user_id, .seat_count = count};
    memcpy(request.seats, seats, count * sizeof(seats[0]));
    struct sc_hold_result result;
    uint64_t lsn;
    enum tk_status status = sc_hold(engine, &request, &result, &lsn);
    if (status == TK_OK)
        TK_ASSERT(sc_engine_wait_durable(engine, lsn) == TK_OK);
    *hold_id = status == TK_OK ? result.hold_id : 0;
    return status;
}

void tk_test_check_counts(struct sc_engine *engine, uint64_t event_id)
{
    struct sc_event_info info;
    TK_ASSERT(sc_event_get(engine, event_id, &info) == TK_OK);
    TK_ASSERT(info.counts.free + info.counts.held + info.counts.sold == info.counts.capacity);
    uint8_t *states = malloc((info.counts.capacity + 3) / 4);
    TK_ASSERT(states != NULL);
    uint64_t version;
    struct sc_counts counts;
    TK_ASSERT(sc_availability_copy(engine, event_id, states, (info.counts.capacity + 3) / 4, &version, &counts) ==
              TK_OK);
    if (counts.free != info.counts.free || counts.held != info.counts.held || counts.sold != info.counts.sold) {
        fprintf(stderr, "counts differ: word free=%u held=%u sold=%u, seats free=%u held=%u sold=%u\n",
                info.counts.free, info.counts.held, info.counts.sold, counts.free, counts.held, counts.sold);
        TK_ASSERT(!"event counts match the seats");
    }
    free(states);
}
