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


/* ---- engine fixtures ---- */
#include "seatcore.h"

/* A spec with `sections` sections of rows x seats_per_row at 1000 cents + 100 * section. */
void tk_test_spec(struct sc_event_spec *spec, uint64_t event_id, uint32_t sections, uint32_t rows,
                  uint32_t seats_per_row);
/* Opens a memory-only engine on a manual clock (engine_config may be NULL). */
struct sc_engine *tk_test_engine(struct tk_clock_manual *clock, const struct sc_engine_config *engine_config);
/* Holds explicit seats; returns the status and fills hold_id (0 on failure). */
enum tk_status tk_test_hold(struct sc_engine *engine, uint64_t event_id, uint64_t user_id, const uint32_t *seats,
                            uint32_t count, uint64_t *hold_id);
/* Checks invariant 5 and that counts match a full availability copy; aborts the test on failure. */
void tk_test_check_counts(struct sc_engine *engine, uint64_t event_id);

#endif
