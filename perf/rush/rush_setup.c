/* rush_setup.c — what the parent prepares before the workers start: the users
 * (straight into PostgreSQL), the admin's token and the events (through the
 * edge's admin API), with a small blocking HTTP client for these few calls.
 *
 * Users: signing up 50,000 people through the edge would measure argon2id, not
 * the rush (libsodium's interactive cost, 64 MiB and 2 passes, is ~60 ms of a
 * core per hash: 50,000 sign-ups and as many logins are ~1.5 hours of CPU
 * here). So the users are inserted with one INSERT ... SELECT generate_series,
 * all with the same argon2id hash computed once at the minimum cost (1 pass,
 * 8 KiB), and the perf stack runs auth-svc at that same cost so a login does not
 * rehash (auth-svc upgrades a hash weaker than its settings at login). Every
 * user still signs in through the edge (POST /api/v1/auth/login: auth-svc looks
 * the user up, verifies the hash, stores a refresh token and signs the JWT), so
 * the tokens are real and the login step is measured. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

#define ONCE_TIMEOUT_MS 60000
#define ONCE_BODY_MAX (64u << 20)

int rush_setup_users(const char *pg_url, const char *prefix, const char *password, uint32_t count, char *err,
                     size_t err_len)
{
    TK_ASSERT(prefix != NULL && password != NULL && count <= RUSH_USERS_MAX);
    if (sodium_init() < 0) {
        snprintf(err, err_len, "libsodium did not initialise");
        return -1;
    }
    char hash[crypto_pwhash_argon2id_STRBYTES];
    if (crypto_pwhash_argon2id_str(hash, password, strlen(password), crypto_pwhash_argon2id_OPSLIMIT_MIN,
                                   8192u) != 0) {
        snprintf(err, err_len, "argon2id failed (out of memory?)");
        return -1;
    }
    PGconn *db = PQconnectdb(pg_url);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(db));
        PQfinish(db);
        return -1;
    }
    char n[16];
    snprintf(n, sizeof(n), "%u", count);
    const char *params[3] = {prefix, hash, n};
    /* Only the missing ones, in order: the same users serve every run on one stack, and
     * no id is burnt on a conflict, so on a fresh database user N always gets the same
     * id (the admin is id 1): a token cache stays valid across the suite's stacks. */
    PGresult *r = PQexecParams(db,
                               "INSERT INTO users (email, name, password_hash) "
                               "SELECT e, 'Rush user ' || g, $2 FROM generate_series(1, $3::int) AS g, "
                               "LATERAL (SELECT $1 || '-' || g || '@perf.tiketi' AS e) AS m "
                               "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE lower(u.email) = m.e) ORDER BY g",
                               3, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, err_len, "inserting users: %s", PQerrorMessage(db));
        rc = -1;
    }
    PQclear(r);
    PQfinish(db);
    return rc;
}

/* ---- a blocking one-shot HTTP client (setup and audit) ---- */

static int connect_target(const struct rush_target *target, char *err, size_t err_len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(target->port)};
    inet_pton(AF_INET, target->host, &addr.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        snprintf(err, err_len, "connect %s: %s", target->base_url, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

int rush_http_once(const struct rush_target *target, const char *method, const char *path, const char *token,
                   const char *body, uint16_t *status, char **response_body, size_t *response_len, char *err,
                   size_t err_len)
{
    size_t body_len = body != NULL ? strlen(body) : 0;
    size_t cap = body_len + strlen(path) + (token != NULL ? strlen(token) : 0) + 512;
    char *request = malloc(cap);
    TK_ASSERT(request != NULL);
    int n = snprintf(request, cap,
                     "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n%s%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, target->host, target->port, token != NULL ? "Authorization: Bearer " : "",
                     token != NULL ? token : "", token != NULL ? "\r\n" : "", body_len, body != NULL ? body : "");
    TK_ASSERT(n > 0 && (size_t)n < cap);
    int fd = connect_target(target, err, err_len);
    if (fd < 0) {
        free(request);
        return -1;
    }
    bool sent = send_all(fd, request, (size_t)n);
    free(request);
    size_t have = 0, room = 65536;
    char *buf = malloc(room);
    TK_ASSERT(buf != NULL);
    struct http_response response;
    http_response_reset(&response);
    enum http_parse p = HTTP_PARSE_ERROR;
    while (sent) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, ONCE_TIMEOUT_MS) <= 0) {
            response.error = "timeout";
            break;
        }
        if (room - have < 4096) {
            room *= 2;
            buf = realloc(buf, room);
            TK_ASSERT(buf != NULL);
        }
        ssize_t got = recv(fd, buf + have, room - have - 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            response.error = strerror(errno);
            break;
        }
        have += (size_t)got;
        p = http_response_parse(&response, buf, have, got == 0, ONCE_BODY_MAX);
        if (p != HTTP_PARSE_MORE)
            break;
    }
    close(fd);
    if (p != HTTP_PARSE_DONE) {
        snprintf(err, err_len, "%s %s: %s", method, path, sent ? (response.error ? response.error : "?") : "send");
        free(buf);
        return -1;
    }
    *status = response.status;
    if (response_body != NULL) {
        memmove(buf, response.body, response.body_len);
        buf[response.body_len] = '\0';
        *response_body = buf;
        if (response_len != NULL)
            *response_len = response.body_len;
    } else {
        free(buf);
    }
    return 0;
}

int rush_admin_login(const struct rush_target *target, const char *email, const char *password, char *token,
                     size_t token_len, char *err, size_t err_len)
{
    json_t *request = json_pack("{s:s, s:s}", "email", email, "password", password);
    char *body = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    uint16_t status = 0;
    char *reply = NULL;
    int rc = rush_http_once(target, "POST", "/api/v1/auth/login", NULL, body, &status, &reply, NULL, err, err_len);
    free(body);
    if (rc != 0)
        return -1;
    json_t *root = json_loads(reply, 0, NULL);
    const char *t = json_string_value(json_object_get(root, "access_token"));
    if (status != 200 || t == NULL || strlen(t) >= token_len) {
        snprintf(err, err_len, "admin login answered %u: %.200s", status, reply);
        rc = -1;
    } else {
        snprintf(token, token_len, "%s", t);
    }
    json_decref(root);
    free(reply);
    return rc;
}

static void rfc3339_in(char *out, size_t len, int64_t seconds_from_now)
{
    time_t t = time(NULL) + seconds_from_now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int rush_create_event(const struct rush_target *target, const char *admin_token, const struct rush_config *config,
                      const char *name, const struct rush_section *sections, uint32_t section_count,
                      bool queue_enabled, uint32_t hold_ttl_s, uint32_t max_seats_per_user,
                      struct rush_event_info *out, char *err, size_t err_len)
{
    char starts[32], opens[32];
    rfc3339_in(starts, sizeof(starts), 30 * 86400);
    rfc3339_in(opens, sizeof(opens), -60); /* on sale now: the rush's T0 is the join burst */
    json_t *list = json_array();
    for (uint32_t i = 0; i < section_count; i++)
        json_array_append_new(list, json_pack("{s:s, s:i, s:i, s:I}", "name", sections[i].name, "rows",
                                              (int)sections[i].rows, "seats_per_row", (int)sections[i].seats_per_row,
                                              "price", (json_int_t)sections[i].price_cents));
    json_t *request = json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:b, s:i, s:i}, s:i, s:i}", "name", name, "venue",
                                "Perf Arena", "starts_at", starts, "sale_opens_at", opens, "sections", list, "queue",
                                "enabled", queue_enabled, "admit_per_s", (int)config->admit_per_s, "max_active",
                                (int)config->max_active, "hold_ttl_s", (int)hold_ttl_s, "max_seats_per_user",
                                (int)max_seats_per_user);
    TK_ASSERT(request != NULL);
    char *body = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    uint16_t status = 0;
    char *reply = NULL;
    int rc = rush_http_once(target, "POST", "/api/v1/admin/events", admin_token, body, &status, &reply, NULL, err,
                            err_len);
    free(body);
    if (rc != 0)
        return -1;
    json_t *root = json_loads(reply, 0, NULL);
    const char *id = json_string_value(json_object_get(root, "event_id"));
    if (status != 201 || id == NULL || strlen(id) >= sizeof(out->id_text)) {
        snprintf(err, err_len, "creating event '%s' answered %u: %.300s", name, status, reply);
        rc = -1;
    } else {
        snprintf(out->id_text, sizeof(out->id_text), "%s", id);
        out->event_id = strtoull(id, NULL, 10);
    }
    json_decref(root);
    free(reply);
    return rc;
}

int64_t rush_user_id(const char *pg_url, const char *prefix, uint32_t number)
{
    PGconn *db = PQconnectdb(pg_url);
    int64_t id = -1;
    char email[128];
    snprintf(email, sizeof(email), "%s-%u@perf.tiketi", prefix, number);
    const char *params[1] = {email};
    PGresult *r = PQstatus(db) == CONNECTION_OK
                      ? PQexecParams(db, "SELECT id FROM users WHERE lower(email) = $1", 1, NULL, params, NULL, NULL, 0)
                      : NULL;
    if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(db);
    return id;
}

uint64_t rush_token_subject(const char *token)
{
    const char *dot = strchr(token, '.');
    const char *dot2 = dot != NULL ? strchr(dot + 1, '.') : NULL;
    if (dot2 == NULL)
        return 0;
    unsigned char payload[1024];
    size_t len = 0;
    if (sodium_base642bin(payload, sizeof(payload) - 1, dot + 1, (size_t)(dot2 - dot - 1), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return 0;
    payload[len] = '\0';
    json_t *root = json_loads((const char *)payload, 0, NULL);
    const char *sub = json_string_value(json_object_get(root, "sub"));
    uint64_t id = sub != NULL ? strtoull(sub, NULL, 10) : 0;
    json_decref(root);
    return id;
}
