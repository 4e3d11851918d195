/* hold.h — holds, sales and returns on one event (internal to seatcore).
 *
 * The hot path of the engine: claim seats all-or-nothing, end a hold (confirm,
 * release, expire), return a sold seat, and the bounded sweeper. Every function
 * here is lock-free and safe to call from many threads at once; see event.h for
 * the words they CAS. Recovery uses the hold_replay_* functions, which apply a
 * record only where it is newer than what memory holds. */
#ifndef HOLD_H
#define HOLD_H

#include <stdint.h>

#include "event.h"
#include "journal.h"
#include "record.h"

/* Finds the user's entry in the event's user table, inserting it if new.
 * TK_ERR_FULL when the table has no room (users_max distinct users held seats). */
enum tk_status hold_user_index(struct sc_event *ev, uint64_t user_id, bool insert, uint32_t *index);

/* Holds exactly these seats (sorted ascending, no duplicates, all < capacity)
 * for user, all or nothing. On conflict nothing is held and result->unavailable
 * lists the seats that were not free. */
enum tk_status hold_seats(struct op_ctx *ctx, struct sc_event *ev, uint64_t user_id, const uint32_t *seats,
                          uint32_t count, uint64_t idempotency_key, uint64_t request_hash,
                          struct sc_hold_result *result);

/* Ends a hold by its owner: kind REC_END_CONFIRMED (held -> sold) or
 * REC_END_RELEASED (held -> free). A hold past its expiry is expired instead and
 * the answer is TK_ERR_HOLD_EXPIRED. */
enum tk_status hold_end(struct op_ctx *ctx, struct sc_event *ev, uint64_t user_id, uint64_t hold_id,
                        enum rec_end_kind kind, uint64_t idempotency_key, uint64_t request_hash,
                        struct sc_hold_result *result);

/* Expires the hold in slot if it is active and past its expiry. true if it did. */
bool hold_expire_slot(struct op_ctx *ctx, struct sc_event *ev, uint32_t slot);

/* Sold -> free (refund), only for the buyer. */
enum tk_status hold_return_seat(struct op_ctx *ctx, struct sc_event *ev, uint64_t user_id, uint32_t seat);

/* Looks at up to budget hold slots from where the last sweep stopped and expires
 * those past their TTL. Returns the number of slots looked at. One thread only. */
uint32_t hold_sweep(struct op_ctx *ctx, struct sc_event *ev, uint32_t budget);

enum tk_status hold_get(struct sc_event *ev, uint64_t hold_id, struct sc_hold_info *out);

/* Recovery (single-threaded). TK_ERR_CORRUPT if the record does not fit the event. */
enum tk_status hold_replay_hold(struct sc_event *ev, const struct rec_hold *rec);
enum tk_status hold_replay_end(struct sc_event *ev, const struct rec_hold_end *rec);
enum tk_status hold_replay_return(struct sc_event *ev, const struct rec_return *rec);

#endif
