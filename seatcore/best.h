/* best.h — best-available seat selection (internal to seatcore). */
#ifndef BEST_H
#define BEST_H

#include <stdint.h>

#include "event.h"

/* Chooses count seats (1..TK_SEATS_PER_HOLD_MAX) in section (-1: any), sorted
 * ascending into seats. TK_ERR_SOLD_OUT when fewer than count seats are free.
 * The choice reads seat words without claiming them; the caller claims them and
 * searches again if it lost a race. */
enum tk_status best_choose(struct sc_event *ev, uint32_t count, int32_t section, uint32_t *seats);

#endif
