/* payment_mask.h — what payment-svc may show of a card token, and input checks.
 *
 * Card tokens never reach a log, a metric or the database in full: only the
 * masked hint ("tok_****ve"). Shared by the handlers and the unit tests. */
#ifndef PAYMENT_MASK_H
#define PAYMENT_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAYMENT_CARD_HINT_BYTES 16u

/* Writes the first 4 and last 2 characters around "****" ("****" for 6 or fewer;
 * anything but printable ASCII shown as '?'). out_len >= PAYMENT_CARD_HINT_BYTES. */
void payment_mask_token(const char *token, char *out, size_t out_len);
/* A card token: 1..255 characters of [A-Za-z0-9_-]. */
bool payment_token_valid(const char *token);
/* An idempotency key: 1..255 printable ASCII characters. */
bool payment_key_valid(const char *key);
/* A UUID in its text form (8-4-4-4-12 hex digits, either case). */
bool payment_uuid_valid(const char *text);
/* A positive decimal int64 with no sign, spaces or leading zeros. */
bool payment_parse_user_id(const char *text, int64_t *out);
/* Three ASCII letters, upper-cased into out[4]; "" means EUR. */
bool payment_currency_normalise(const char *text, char out[4]);

#endif
