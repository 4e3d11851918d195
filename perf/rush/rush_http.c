/* rush_http.c — the HTTP/1.1 response parser of the load generator.
 *
 * Small and bounded on purpose: one response at a time per connection (no
 * pipelining), a head of at most RUSH_HEAD_BYTES_MAX, a body of at most the
 * caller's body_max, Content-Length or chunked (decoded in place, incrementally,
 * so a large chunked seat map costs one pass) or read-until-close. It reads only
 * what the load generator needs: the status, the body, Connection: close, and
 * the WebSocket upgrade's Sec-WebSocket-Accept. Anything malformed is an error
 * the caller counts, never a crash: the input comes from the server under test. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rush.h"
#include "tk_assert.h"

void http_response_reset(struct http_response *response)
{
    memset(response, 0, sizeof(*response));
    response->content_length = UINT64_MAX;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *value_len)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *value_len = (size_t)(end - v);
    return true;
}

static bool contains_token(const char *value, size_t len, const char *token)
{
    size_t n = strlen(token);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(value + i, token, n) == 0)
            return true;
    return false;
}

/* Status line and headers; false with response->error on garbage. */
static bool parse_head(struct http_response *response, const char *buf, size_t head_len)
{
    if (head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || !isdigit((unsigned char)buf[9]) ||
        !isdigit((unsigned char)buf[10]) || !isdigit((unsigned char)buf[11])) {
        response->error = "bad status line";
        return false;
    }
    response->status = (uint16_t)((buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
    if (buf[7] == '0')
        response->close = true; /* HTTP/1.0: close unless keep-alive (we never ask) */
    const char *line = memchr(buf, '\n', head_len);
    for (uint32_t lines = 0; line != NULL && lines < 128; lines++) {
        line++;
        const char *end = memchr(line, '\n', (size_t)(buf + head_len - line));
        if (end == NULL)
            break;
        size_t len = (size_t)(end - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            break;
        const char *v;
        size_t vlen;
        if (header_is(line, len, "content-length", &v, &vlen)) {
            char digits[24];
            if (vlen == 0 || vlen >= sizeof(digits)) {
                response->error = "bad content-length";
                return false;
            }
            memcpy(digits, v, vlen);
            digits[vlen] = '\0';
            char *stop = NULL;
            unsigned long long n = strtoull(digits, &stop, 10);
            if (*stop != '\0') {
                response->error = "bad content-length";
                return false;
            }
            response->content_length = n;
        } else if (header_is(line, len, "transfer-encoding", &v, &vlen)) {
            response->chunked = contains_token(v, vlen, "chunked");
        } else if (header_is(line, len, "connection", &v, &vlen)) {
            if (contains_token(v, vlen, "close"))
                response->close = true;
            if (contains_token(v, vlen, "upgrade"))
                response->upgrade = true;
        } else if (header_is(line, len, "sec-websocket-accept", &v, &vlen)) {
            if (vlen < sizeof(response->websocket_accept)) {
                memcpy(response->websocket_accept, v, vlen);
                response->websocket_accept[vlen] = '\0';
            }
        }
        line = end;
    }
    return true;
}

static const char *find_head_end(const char *buf, uint64_t len)
{
    for (uint64_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return buf + i + 1;
    return NULL;
}

/* Decodes the chunks available at raw_off into the body; DONE after the last. */
static enum http_parse parse_chunks(struct http_response *r, char *buf, uint64_t len, uint64_t body_max)
{
    while (!r->chunks_done) {
        char *line = buf + r->raw_off;
        uint64_t avail = len - r->raw_off;
        char *nl = memchr(line, '\n', avail > 32 ? 32 : avail);
        if (nl == NULL) {
            if (avail >= 32) {
                r->error = "bad chunk size line";
                return HTTP_PARSE_ERROR;
            }
            return HTTP_PARSE_MORE;
        }
        char *stop = NULL;
        unsigned long long size = strtoull(line, &stop, 16);
        if (stop == line || (*stop != '\r' && *stop != ';' && *stop != '\n')) {
            r->error = "bad chunk size";
            return HTTP_PARSE_ERROR;
        }
        uint64_t data_at = (uint64_t)(nl + 1 - buf);
        if (size == 0) {
            /* no trailers from our servers: the final CRLF ends it */
            if (len < data_at + 2)
                return HTTP_PARSE_MORE;
            r->raw_off = data_at + 2;
            r->chunks_done = true;
            break;
        }
        if (r->body_end - r->head_len + size > body_max) {
            r->error = "body too large";
            return HTTP_PARSE_ERROR;
        }
        if (len < data_at + size + 2)
            return HTTP_PARSE_MORE;
        memmove(buf + r->body_end, buf + data_at, size);
        r->body_end += size;
        r->raw_off = data_at + size + 2;
    }
    r->body = buf + r->head_len;
    r->body_len = r->body_end - r->head_len;
    r->consumed = r->raw_off;
    return HTTP_PARSE_DONE;
}

enum http_parse http_response_parse(struct http_response *r, char *buf, uint64_t len, bool eof, uint64_t body_max)
{
    TK_ASSERT(buf != NULL || len == 0);
    if (r->head_len == 0) {
        const char *end = find_head_end(buf, len < RUSH_HEAD_BYTES_MAX ? len : RUSH_HEAD_BYTES_MAX);
        if (end == NULL) {
            if (len >= RUSH_HEAD_BYTES_MAX) {
                r->error = "response head too large";
                return HTTP_PARSE_ERROR;
            }
            if (eof) {
                r->error = len == 0 ? "connection closed" : "connection closed inside the head";
                return HTTP_PARSE_ERROR;
            }
            return HTTP_PARSE_MORE;
        }
        r->head_len = (uint32_t)(end - buf);
        if (!parse_head(r, buf, r->head_len))
            return HTTP_PARSE_ERROR;
        r->raw_off = r->head_len;
        r->body_end = r->head_len;
    }
    bool bodiless = r->status == 101 || r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200);
    if (bodiless) {
        r->body = buf + r->head_len;
        r->body_len = 0;
        r->consumed = r->head_len;
        return HTTP_PARSE_DONE;
    }
    if (r->chunked) {
        enum http_parse p = parse_chunks(r, buf, len, body_max);
        if (p == HTTP_PARSE_MORE && eof) {
            r->error = "connection closed inside a chunked body";
            return HTTP_PARSE_ERROR;
        }
        return p;
    }
    if (r->content_length != UINT64_MAX) {
        if (r->content_length > body_max) {
            r->error = "body too large";
            return HTTP_PARSE_ERROR;
        }
        if (len - r->head_len < r->content_length) {
            if (eof) {
                r->error = "connection closed inside the body";
                return HTTP_PARSE_ERROR;
            }
            return HTTP_PARSE_MORE;
        }
        r->body = buf + r->head_len;
        r->body_len = r->content_length;
        r->consumed = r->head_len + r->content_length;
        return HTTP_PARSE_DONE;
    }
    /* neither: the body runs to the close */
    if (len - r->head_len > body_max) {
        r->error = "body too large";
        return HTTP_PARSE_ERROR;
    }
    if (!eof)
        return HTTP_PARSE_MORE;
    r->close = true;
    r->body = buf + r->head_len;
    r->body_len = len - r->head_len;
    r->consumed = len;
    return HTTP_PARSE_DONE;
}

void http_problem_code(const char *body, uint64_t len, char *out, size_t out_len)
{
    TK_ASSERT(out != NULL && out_len > 0);
    out[0] = '\0';
    /* "code":"..." without a full JSON parse: problem bodies are small and flat */
    static const char key[] = "\"code\":\"";
    if (body == NULL || len < sizeof(key))
        return;
    const char *end = body + len;
    for (const char *p = body; p + sizeof(key) - 1 < end; p++) {
        if (memcmp(p, key, sizeof(key) - 1) != 0)
            continue;
        p += sizeof(key) - 1;
        size_t n = 0;
        while (p + n < end && p[n] != '"' && n + 1 < out_len)
            n++;
        memcpy(out, p, n);
        out[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)out[i]) && out[i] != '_')
                out[i] = '_';
        return;
    }
}
