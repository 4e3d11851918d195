/* test_reservation_admission.c — tests services/reservation/reservation_admission.c:
 * the offline admission-token check in front of the engine. Tokens are signed
 * here with seatcore/token.c, exactly as seatcored signs them.
 *
 * The source is compiled into this test directly (it depends on seatcore only). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../services/reservation/reservation_admission.c"

#define NOW_MS INT64_C(1740852000000)

static struct token_key key_a, key_b;

static void keys(void)
{
    uint8_t a[32], b[32];
    memset(a, 0xa5, sizeof(a));
    memset(b, 0x5a, sizeof(b));
    cr_assert_eq(token_key_init(&key_a, a, sizeof(a)), TK_OK);
    cr_assert_eq(token_key_init(&key_b, b, sizeof(b)), TK_OK);
}

static void sign(const struct token_key *key, uint64_t event, uint64_t user, int64_t expires_ms,
                 char out[TOKEN_TEXT_BYTES])
{
    struct token_claims claims = {.event_id = event, .user_id = user, .ticket = 7, .expires_ms = expires_ms};
    cr_assert_eq(token_sign(key, &claims, out, TOKEN_TEXT_BYTES), TK_OK);
}

TestSuite(rsv_admission, .init = keys);

Test(rsv_admission, accepts_the_users_token_for_the_event)
{
    char token[TOKEN_TEXT_BYTES];
    sign(&key_a, 1042, 77, NOW_MS + 60000, token);
    const char *why = "x";
    cr_assert_eq(rsv_admission_check(&key_a, token, 1042, 77, NOW_MS, &why), TK_OK);
    cr_assert_null(why);
}

Test(rsv_admission, refuses_no_token)
{
    const char *why = NULL;
    cr_assert_eq(rsv_admission_check(&key_a, "", 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
    cr_assert(why != NULL && strstr(why, "required") != NULL);
    cr_assert_eq(rsv_admission_check(&key_a, NULL, 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
}

Test(rsv_admission, refuses_a_token_signed_with_another_key)
{
    char token[TOKEN_TEXT_BYTES];
    sign(&key_b, 1042, 77, NOW_MS + 60000, token);
    const char *why = NULL;
    cr_assert_eq(rsv_admission_check(&key_a, token, 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
    cr_assert(strstr(why, "not genuine") != NULL, "%s", why);
}

Test(rsv_admission, refuses_an_altered_token)
{
    char token[TOKEN_TEXT_BYTES];
    sign(&key_a, 1042, 77, NOW_MS + 60000, token);
    for (size_t i = 0; i < TOKEN_TEXT_LEN; i += 7) {
        char forged[TOKEN_TEXT_BYTES];
        memcpy(forged, token, sizeof(forged));
        forged[i] = forged[i] == 'A' ? 'B' : 'A';
        const char *why = NULL;
        cr_assert_eq(rsv_admission_check(&key_a, forged, 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED,
                     "character %zu altered", i);
    }
    const char *why = NULL;
    cr_assert_eq(rsv_admission_check(&key_a, "not-a-token", 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
    cr_assert(strstr(why, "malformed") != NULL, "%s", why);
}

Test(rsv_admission, refuses_an_expired_token)
{
    char token[TOKEN_TEXT_BYTES];
    sign(&key_a, 1042, 77, NOW_MS - 1, token);
    const char *why = NULL;
    cr_assert_eq(rsv_admission_check(&key_a, token, 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
    cr_assert(strstr(why, "expired") != NULL, "%s", why);
}

Test(rsv_admission, refuses_another_users_or_events_token)
{
    char token[TOKEN_TEXT_BYTES];
    sign(&key_a, 1042, 77, NOW_MS + 60000, token);
    const char *why = NULL;
    cr_assert_eq(rsv_admission_check(&key_a, token, 1042, 78, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
    cr_assert(strstr(why, "another") != NULL, "%s", why);
    cr_assert_eq(rsv_admission_check(&key_a, token, 1043, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
}

Test(rsv_admission, refuses_everything_without_a_key)
{
    struct token_key none = {0};
    char token[TOKEN_TEXT_BYTES];
    sign(&key_a, 1042, 77, NOW_MS + 60000, token);
    const char *why = NULL;
    cr_assert_eq(rsv_admission_check(&none, token, 1042, 77, NOW_MS, &why), TK_ERR_NOT_ADMITTED);
}
