/* edge_json.c — request bodies with jansson, responses dumped into the
 * request's pool, and gzip (zlib) for large bodies.
 *
 * Bodies are parsed by jansson (duplicate keys refused, trailing bytes
 * refused); the size was already bounded by h2o (--body-max-bytes, 413).
 * Unknown fields are ignored, as API.md says; a known field of the wrong type
 * or out of range is a 400 naming the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "edge.h"
#include "tk_assert.h"

int edge_json_string(const json_t *object, const char *key, size_t max_len, const char **out)
{
    const json_t *value = json_object_get(object, key);
    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_string(value))
        return -1;
    size_t len = json_string_length(value);
    if (len == 0 || len > max_len || strlen(json_string_value(value)) != len) /* no NUL inside */
        return -1;
    *out = json_string_value(value);
    return 1;
}

int edge_json_uint(const json_t *object, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    const json_t *value = json_object_get(object, key);
    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_integer(value))
        return -1;
    json_int_t n = json_integer_value(value);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return -1;
    *out = (uint64_t)n;
    return 1;
}

bool edge_require_body(struct edge_request *r)
{
    h2o_iovec_t entity = r->req->entity;
    if (entity.base == NULL || entity.len == 0) {
        edge_send_problem(r, 400, "a JSON object body is required");
        return false;
    }
    json_error_t error;
    json_t *body = json_loadb(entity.base, entity.len, JSON_REJECT_DUPLICATES, &error);
    if (body == NULL) {
        char detail[256];
        snprintf(detail, sizeof(detail), "the body is not valid JSON: %s (line %d, column %d)", error.text, error.line,
                 error.column);
        edge_send_problem(r, 400, detail);
        return false;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        edge_send_problem(r, 400, "the body must be a JSON object");
        return false;
    }
    TK_ASSERT(r->body == NULL);
    r->body = body; /* freed with the request */
    return true;
}

h2o_iovec_t edge_json_dump(h2o_mem_pool_t *pool, const json_t *json)
{
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(6);
    size_t size = json_dumpb(json, NULL, 0, flags);
    TK_ASSERT(size > 0);
    char *buffer = h2o_mem_alloc_pool(pool, size);
    size_t written = json_dumpb(json, buffer, size, flags);
    TK_ASSERT(written == size);
    return h2o_iovec_init(buffer, size);
}

bool edge_gzip(const void *in, size_t in_len, void **out, size_t *out_len)
{
    z_stream stream;
    memset(&stream, 0, sizeof(stream));
    /* 15 + 16: a gzip wrapper; level 6 is zlib's default trade-off */
    if (deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    size_t bound = deflateBound(&stream, (uLong)in_len);
    unsigned char *buffer = malloc(bound);
    if (buffer == NULL) {
        deflateEnd(&stream);
        return false;
    }
    stream.next_in = (Bytef *)in;
    stream.avail_in = (uInt)in_len;
    stream.next_out = buffer;
    stream.avail_out = (uInt)bound;
    int rc = deflate(&stream, Z_FINISH);
    size_t produced = stream.total_out;
    deflateEnd(&stream);
    if (rc != Z_STREAM_END) {
        free(buffer);
        return false;
    }
    TK_ASSERT(produced <= bound);
    *out = buffer;
    *out_len = produced;
    return true;
}
