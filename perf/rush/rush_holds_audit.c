/* rush_holds_audit.c — the holds scenarios' audit, from the clients alone: no
 * seat was held by two holds at the same time, against either target.
 *
 * The holds scenarios sell nothing, so the rush's audit (engine, PostgreSQL,
 * payments) has nothing to compare; what a hold path must never do is give a
 * seat that is held to a second hold. Every worker keeps, per seat of every 201
 * answer, when the hold was asked for (the request's start: its first send, or
 * its due time, always before the server made it), when it was answered, and
 * when its release was asked for. Seat s of hold A is then certainly held from
 * A's answer until A's start + hold_ttl_s (the server counts the TTL from a
 * moment after A's start) or until its release was asked for, whichever comes
 * first. A later hold B of the same seat is a double hold when B was asked for
 * after A's answer and answered before that end: B happened entirely while A
 * certainly held the seat. The test gives no false alarms on clock or network
 * delays (every bound is taken on the safe side); it can miss a double hold that
 * overlaps the edges of those windows, which is the price of judging from
 * outside.
 *
 * Workers write their records to a file each at the end (a process's heap does
 * not outlive it), the parent reads them after the workers exited. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

#define MARGIN_US 1000u /* B's answer must come this much before A's end */

void rush_hold_log_path(char *out, size_t len, pid_t parent, uint32_t worker)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, len, "%s/rush-holds-%d-%u.bin", dir != NULL && dir[0] != '\0' ? dir : "/tmp", (int)parent, worker);
}

/* The file: uint32 count, uint32 dropped (seats not kept: the log was full), then the records. */
int rush_hold_log_write(const char *path, const struct rush_held_seat *seats, uint32_t count, uint32_t dropped)
{
    TK_ASSERT(count <= RUSH_HELD_SEATS_MAX);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    uint32_t head[2] = {count, dropped};
    bool ok = fwrite(head, sizeof(head), 1, f) == 1 &&
              (count == 0 || fwrite(seats, sizeof(seats[0]), count, f) == count);
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : -1;
}

static int by_seat_then_answer(const void *a, const void *b)
{
    const struct rush_held_seat *x = a, *y = b;
    if (x->event != y->event)
        return x->event < y->event ? -1 : 1;
    if (x->seat != y->seat)
        return x->seat < y->seat ? -1 : 1;
    if (x->answered_us != y->answered_us)
        return x->answered_us < y->answered_us ? -1 : 1;
    return 0;
}

/* The holds of one seat [from, to), sorted by answer: each pair (A, B) with B
 * asked for after A's answer and answered before A's certain end. */
static uint64_t seat_doubles(const struct rush_held_seat *s, uint64_t from, uint64_t to,
                             struct rush_hold_audit *out)
{
    uint64_t doubles = 0;
    for (uint64_t b = from + 1; b < to; b++)
        for (uint64_t a = from; a < b; a++) {
            if (s[b].start_us < s[a].answered_us || s[b].answered_us + MARGIN_US > s[a].end_us)
                continue;
            if (doubles == 0 && out->double_holds == 0)
                snprintf(out->example, sizeof(out->example),
                         "event #%u seat %u: held (answered at %.3f s, certainly held to %.3f s), held again "
                         "(asked at %.3f s, answered at %.3f s)",
                         s[a].event + 1u, s[a].seat, (double)s[a].answered_us / 1e6, (double)s[a].end_us / 1e6,
                         (double)s[b].start_us / 1e6, (double)s[b].answered_us / 1e6);
            doubles++;
            break; /* B counts once */
        }
    return doubles;
}

int rush_hold_audit_run(pid_t parent, uint32_t workers, struct rush_hold_audit *out)
{
    memset(out, 0, sizeof(*out));
    struct rush_held_seat *all = NULL;
    uint64_t count = 0;
    for (uint32_t w = 0; w < workers; w++) {
        char path[512];
        rush_hold_log_path(path, sizeof(path), parent, w);
        FILE *f = fopen(path, "rb");
        uint32_t head[2] = {0, 0};
        if (f == NULL || fread(head, sizeof(head), 1, f) != 1 || head[0] > RUSH_HELD_SEATS_MAX) {
            snprintf(out->why_not, sizeof(out->why_not), "worker %u left no hold log (%.100s)", w, path);
            if (f != NULL)
                fclose(f);
            free(all);
            return -1;
        }
        uint32_t n = head[0];
        out->dropped += head[1];
        struct rush_held_seat *grown = realloc(all, (count + n + 1) * sizeof(all[0]));
        TK_ASSERT(grown != NULL);
        all = grown;
        bool ok = n == 0 || fread(all + count, sizeof(all[0]), n, f) == n;
        fclose(f);
        unlink(path);
        if (!ok) {
            snprintf(out->why_not, sizeof(out->why_not), "worker %u's hold log is short", w);
            free(all);
            return -1;
        }
        count += n;
    }
    if (all != NULL)
        qsort(all, count, sizeof(all[0]), by_seat_then_answer);
    for (uint64_t i = 0; i < count;) {
        uint64_t j = i + 1;
        while (j < count && all[j].event == all[i].event && all[j].seat == all[i].seat)
            j++;
        out->seats++;
        out->double_holds += seat_doubles(all, i, j, out);
        i = j;
    }
    for (uint64_t i = 0; i < count; i++)
        TK_ASSERT(all[i].start_us <= all[i].answered_us); /* asked before answered, by construction */
    out->seat_holds = count;
    out->ran = true;
    out->pass = out->double_holds == 0;
    free(all);
    return 0;
}
