/* edge_api_auth.c — /api/v1/auth: sign-up, login, refresh, logout, me.
 *
 * Thin: check the body, call auth-svc, shape the reply. Passwords and tokens
 * never reach a log line (the access log has no bodies and no query strings). */
#include <string.h>

#include "edge.h"
#include "tiketi/v1/auth.pb-c.h"
#include "tk_assert.h"

#define EMAIL_BYTES_MAX 254u
#define PASSWORD_BYTES_MAX 128u
#define NAME_BYTES_MAX 200u
#define REFRESH_TOKEN_BYTES_MAX 256u

/* A required string member; sends 400 naming it and returns NULL when missing or bad. */
static const char *required_string(struct edge_request *r, const char *key, size_t max_len)
{
    const char *value = NULL;
    if (edge_json_string(r->body, key, max_len, &value) == 1)
        return value;
    char detail[128];
    snprintf(detail, sizeof(detail), "'%s' must be a non-empty string of at most %zu bytes", key, max_len);
    edge_send_problem(r, 400, detail);
    return NULL;
}

static void on_signed_up(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__SignUpReply *reply = (const void *)call->reply;
    edge_send_json(r, 201, json_pack("{s:s}", "user_id", reply->user_id));
}

void edge_api_signup(struct edge_request *r)
{
    if (!edge_require_body(r))
        return;
    const char *email, *password, *name;
    if ((email = required_string(r, "email", EMAIL_BYTES_MAX)) == NULL ||
        (password = required_string(r, "password", PASSWORD_BYTES_MAX)) == NULL ||
        (name = required_string(r, "name", NAME_BYTES_MAX)) == NULL)
        return;
    Tiketi__V1__SignUpRequest request = TIKETI__V1__SIGN_UP_REQUEST__INIT;
    request.email = (char *)email;
    request.password = (char *)password;
    request.name = (char *)name;
    edge_call_start(r, EDGE_DEP_AUTH, EDGE_M_SIGNUP, &request.base, &tiketi__v1__sign_up_reply__descriptor, 0,
                    on_signed_up, NULL);
}

static void on_tokens(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__TokenPair *pair = (const void *)call->reply;
    edge_send_json(r, 200,
                   json_pack("{s:s, s:s, s:I, s:I, s:s}", "access_token", pair->access_token, "refresh_token",
                             pair->refresh_token, "expires_in", (json_int_t)pair->expires_in, "refresh_expires_in",
                             (json_int_t)pair->refresh_expires_in, "token_type", "Bearer"));
}

void edge_api_login(struct edge_request *r)
{
    if (!edge_require_body(r))
        return;
    const char *email, *password;
    if ((email = required_string(r, "email", EMAIL_BYTES_MAX)) == NULL ||
        (password = required_string(r, "password", PASSWORD_BYTES_MAX)) == NULL)
        return;
    Tiketi__V1__LoginRequest request = TIKETI__V1__LOGIN_REQUEST__INIT;
    request.email = (char *)email;
    request.password = (char *)password;
    request.client_ip = strcmp(r->client_ip, "unknown") == 0 ? "" : r->client_ip;
    edge_call_start(r, EDGE_DEP_AUTH, EDGE_M_LOGIN, &request.base, &tiketi__v1__token_pair__descriptor, 0, on_tokens,
                    NULL);
}

void edge_api_refresh(struct edge_request *r)
{
    if (!edge_require_body(r))
        return;
    const char *token = required_string(r, "refresh_token", REFRESH_TOKEN_BYTES_MAX);
    if (token == NULL)
        return;
    Tiketi__V1__RefreshRequest request = TIKETI__V1__REFRESH_REQUEST__INIT;
    request.refresh_token = (char *)token;
    edge_call_start(r, EDGE_DEP_AUTH, EDGE_M_REFRESH, &request.base, &tiketi__v1__token_pair__descriptor, 0,
                    on_tokens, NULL);
}

static void on_logged_out(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    edge_send_empty(r, 204);
}

/* With a refresh token in the body: that login's tokens (and, when an access
 * token comes too, only if it is the same user's). Without: every refresh
 * token of the access token's user. */
void edge_api_logout(struct edge_request *r)
{
    const char *refresh = NULL;
    if (r->req->entity.len > 0) {
        if (!edge_require_body(r))
            return;
        if (edge_json_string(r->body, "refresh_token", REFRESH_TOKEN_BYTES_MAX, &refresh) < 0) {
            edge_send_problem(r, 400, "'refresh_token' must be a non-empty string");
            return;
        }
    }
    size_t len;
    bool has_bearer = edge_header(r, "authorization", &len) != NULL;
    if (has_bearer && !edge_authenticate(r, NULL, 0)) {
        edge_send_problem(r, 401, "the access token is not valid");
        return;
    }
    if (refresh == NULL && !r->authenticated) {
        edge_send_problem(r, 401, "log out with an access token (Authorization: Bearer) or a refresh_token");
        return;
    }
    Tiketi__V1__LogoutRequest request = TIKETI__V1__LOGOUT_REQUEST__INIT;
    request.refresh_token = refresh != NULL ? (char *)refresh : "";
    request.user_id = r->authenticated ? r->claims.sub : "";
    edge_call_start(r, EDGE_DEP_AUTH, EDGE_M_LOGOUT, &request.base, &tiketi__v1__empty__descriptor, 0,
                    on_logged_out, NULL);
}

static void on_me(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    const Tiketi__V1__User *user = (const void *)call->reply;
    edge_send_json(r, 200,
                   json_pack("{s:s, s:s, s:s, s:s}", "user_id", user->user_id, "email", user->email, "name",
                             user->name, "role", user->role));
}

void edge_api_me(struct edge_request *r)
{
    TK_ASSERT(r->authenticated);
    Tiketi__V1__MeRequest request = TIKETI__V1__ME_REQUEST__INIT;
    request.user_id = r->claims.sub;
    edge_call_start(r, EDGE_DEP_AUTH, EDGE_M_ME, &request.base, &tiketi__v1__user__descriptor, 0, on_me, NULL);
}
