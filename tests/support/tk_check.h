/* tk_check.h — assertions for the stress tests, which are plain programs.
 *
 * Why not criterion there: criterion's runner cannot start under
 * ThreadSanitizer (its inheritable arena fails to map: Snaipe/Criterion#274),
 * and the stress tests exist to run under TSan. A stress test is a main() that
 * returns 0, or prints what broke and aborts. */
#ifndef TK_CHECK_H
#define TK_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define TK_CHECK(cond, ...)                                                                                            \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "CHECK FAILED at %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
            fprintf(stderr, " " __VA_ARGS__);                                                                          \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

#define TK_CHECK_EQ(a, b, ...) TK_CHECK((a) == (b), __VA_ARGS__)
#define TK_CHECK_NEQ(a, b, ...) TK_CHECK((a) != (b), __VA_ARGS__)
#define TK_CHECK_LT(a, b, ...) TK_CHECK((a) < (b), __VA_ARGS__)
#define TK_CHECK_LEQ(a, b, ...) TK_CHECK((a) <= (b), __VA_ARGS__)
#define TK_CHECK_GT(a, b, ...) TK_CHECK((a) > (b), __VA_ARGS__)

#endif
