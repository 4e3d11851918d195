/* test_payment_mask.c — card token masking and request checks
 * (services/payment/payment_mask.c): a token never shows in full, hostile
 * input is refused rather than trusted. Compiled in directly, like the breaker. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../services/payment/payment_mask.c"

Test(payment_mask, tokens_keep_only_a_hint)
{
    char out[PAYMENT_CARD_HINT_BYTES];
    payment_mask_token("tok_approve", out, sizeof(out));
    cr_assert_str_eq(out, "tok_****ve");
    payment_mask_token("tok_decline", out, sizeof(out));
    cr_assert_str_eq(out, "tok_****ne");
    payment_mask_token("abcdef", out, sizeof(out));
    cr_assert_str_eq(out, "****", "short tokens show nothing");
    payment_mask_token("", out, sizeof(out));
    cr_assert_str_eq(out, "****");
    payment_mask_token(NULL, out, sizeof(out));
    cr_assert_str_eq(out, "****");
    char longest[300];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    payment_mask_token(longest, out, sizeof(out));
    cr_assert_str_eq(out, "xxxx****xx");
    payment_mask_token("a\"b\\c\ndefgh\x01", out, sizeof(out));
    cr_assert_null(strchr(out, '"'), "no quote can break a JSON log line");
    cr_assert_null(strchr(out, '\\'));
    cr_assert_null(strchr(out, '\n'));
}

Test(payment_mask, token_and_key_checks)
{
    cr_assert(payment_token_valid("tok_approve"));
    cr_assert(payment_token_valid("tok-1_A"));
    cr_assert_not(payment_token_valid(""));
    cr_assert_not(payment_token_valid(NULL));
    cr_assert_not(payment_token_valid("tok approve"));
    cr_assert_not(payment_token_valid("tok\"x"));
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_not(payment_token_valid(big));
    cr_assert_not(payment_key_valid(big));
    big[255] = '\0';
    cr_assert(payment_token_valid(big));
    cr_assert(payment_key_valid(big));
    cr_assert(payment_key_valid("order-42:attempt/1"));
    cr_assert_not(payment_key_valid(""));
    cr_assert_not(payment_key_valid("has space"));
    cr_assert_not(payment_key_valid("tab\tkey"));
}

Test(payment_mask, uuids_user_ids_and_currencies)
{
    cr_assert(payment_uuid_valid("0b7c4c1e-9d1a-4f5e-8a3b-2c6d7e8f9a0b"));
    cr_assert(payment_uuid_valid("0B7C4C1E-9D1A-4F5E-8A3B-2C6D7E8F9A0B"));
    cr_assert_not(payment_uuid_valid("0b7c4c1e9d1a4f5e8a3b2c6d7e8f9a0b"));
    cr_assert_not(payment_uuid_valid("0b7c4c1e-9d1a-4f5e-8a3b-2c6d7e8f9a0"));
    cr_assert_not(payment_uuid_valid("0b7c4c1e-9d1a-4f5e-8a3b-2c6d7e8f9a0bz"));
    cr_assert_not(payment_uuid_valid("'; DROP TABLE payments; --'''''''''"));
    cr_assert_not(payment_uuid_valid(NULL));
    int64_t id = 0;
    cr_assert(payment_parse_user_id("42", &id));
    cr_assert_eq(id, 42);
    cr_assert(payment_parse_user_id("9223372036854775807", &id));
    cr_assert_eq(id, INT64_MAX);
    cr_assert_not(payment_parse_user_id("9223372036854775808", &id));
    cr_assert_not(payment_parse_user_id("0", &id));
    cr_assert_not(payment_parse_user_id("-1", &id));
    cr_assert_not(payment_parse_user_id("01", &id));
    cr_assert_not(payment_parse_user_id("1 ", &id));
    cr_assert_not(payment_parse_user_id("", &id));
    char currency[4];
    cr_assert(payment_currency_normalise("eur", currency));
    cr_assert_str_eq(currency, "EUR");
    cr_assert(payment_currency_normalise("", currency));
    cr_assert_str_eq(currency, "EUR");
    cr_assert_not(payment_currency_normalise("EURO", currency));
    cr_assert_not(payment_currency_normalise("E1R", currency));
}
