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
