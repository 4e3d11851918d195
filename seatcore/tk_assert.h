/* tk_assert.h — assertions that stay on in release builds.
 *
 * Assertions state what the code believes (TigerBeetle style): arguments, return
 * values and invariants. They are never compiled out: a broken invariant in a
 * ticketing engine means a seat could be sold twice, and stopping is the only
 * safe answer. Input from outside is never asserted on; it is validated and
 * refused with a tk_status instead. */
#ifndef TK_ASSERT_H
#define TK_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define TK_LIKELY(x) __builtin_expect(!!(x), 1)
#define TK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TK_LIKELY(x) (x)
#define TK_UNLIKELY(x) (x)
#endif

__attribute__((noreturn, cold)) static inline void tk_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed\",\"expr\":\"%s\",\"at\":\"%s:%d\"}\n", expr,
            file, line);
    fflush(stderr);
    abort();
}

#define TK_ASSERT(expr)                                                                                                \
    do {                                                                                                               \
        if (TK_UNLIKELY(!(expr)))                                                                                      \
            tk_assert_fail(#expr, __FILE__, __LINE__);                                                                 \
    } while (0)

#define TK_UNREACHABLE() tk_assert_fail("unreachable", __FILE__, __LINE__)

#endif
