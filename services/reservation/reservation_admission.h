/* reservation_admission.h — the admission token, checked offline.
 *
 * The waiting room (seatcored's queue, served by queue-svc) hands an admitted
 * user a token signed with the shared key file (seatcore/token.h). Verifying it
 * here, with the same key, turns a missing, forged, expired or borrowed token
 * into a clear NOT_ADMITTED before any engine call; seatcored checks it again
 * on events with a waiting room, so this is the early answer, not the only
 * guard. Pure (no I/O): tests/unit/services/test_reservation_admission.c. */
#ifndef RESERVATION_ADMISSION_H
#define RESERVATION_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "tk_status.h"
#include "token.h"

/* TK_OK, or TK_ERR_NOT_ADMITTED with *why a sentence for the client. A token is
 * valid for one event and one user until it expires. */
enum tk_status rsv_admission_check(const struct token_key *key, const char *token, uint64_t event_id,
                                   uint64_t user_id, int64_t now_ms, const char **why);

#endif
