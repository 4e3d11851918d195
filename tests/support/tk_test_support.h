/* tk_test_support.h — small helpers shared by the criterion tests. */
#ifndef TK_TEST_SUPPORT_H
#define TK_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh empty directory under $TMPDIR (or /tmp) and returns its path
 * (static storage per call site is not assumed: the caller owns the buffer). */
void tk_test_tempdir(char *out, size_t out_len, const char *tag);
/* Removes a directory tree made by tk_test_tempdir. */
void tk_test_rmtree(const char *path);
/* Deterministic PRNG for tests (xorshift64*), never zero state. */
uint64_t tk_test_rand(uint64_t *state);
/* Seed from TK_TEST_SEED if set, else from the clock; printed so a failure can be replayed. */
uint64_t tk_test_seed(const char *test_name);

#endif
