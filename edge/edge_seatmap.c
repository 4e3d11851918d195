/* edge_seatmap.c — GET /api/v1/events/{id}/seats: ETag, 304, gzip, a short cache.
 *
 * A seat map can be 200,000 seats (7.5 MB of protobuf, several MB of JSON), and
 * at an on-sale thousands of clients ask for the same one. So:
 *   - the JSON and its gzip are made once per fetch, on the gRPC completion
 *     thread (prepare), never on a loop;
 *   - a fetched map answers every request for that event for --seatmap-cache-ms
 *     (default 250 ms) from a small process-wide cache, whatever the loop;
 *   - the ETag is weak, W/"<availability version>.<catalog version>": it moves
 *     on every seat change and every catalog change (event.proto's advice), and
 *     is the same for the identity and gzip forms; If-None-Match gets 304.
 * Cached maps are reference-counted: a response in flight keeps its map alive
 * through a reference tied to the request's memory pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"
#include "tiketi/v1/event.pb-c.h"
#include "tk_assert.h"

#define GZIP_BYTES_MIN 1024u /* smaller bodies are sent as they are */

struct seatmap {
    struct edge_shared shared;
    uint64_t event_id, version, catalog_version;
    uint64_t fetched_ms; /* monotonic */
    char etag[64];
    char *json;
    size_t json_len;
    void *gzip;
    size_t gzip_len;
};

struct edge_seatmap_cache {
    pthread_mutex_t lock;
    struct seatmap *maps[EDGE_SEATMAP_CACHE_EVENTS];
};

static void seatmap_release(struct edge_shared *shared)
{
    struct seatmap *map = (struct seatmap *)shared;
    free(map->json);
    free(map->gzip);
    free(map);
}

static void seatmap_free_prepared(void *prepared)
{
    edge_shared_unref(&((struct seatmap *)prepared)->shared);
}

struct edge_seatmap_cache *edge_seatmap_cache_create(void)
{
    struct edge_seatmap_cache *cache = calloc(1, sizeof(*cache));
    TK_ASSERT(cache != NULL);
    pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

void edge_seatmap_cache_destroy(struct edge_seatmap_cache *cache)
{
    if (cache == NULL)
        return;
    for (uint32_t i = 0; i < EDGE_SEATMAP_CACHE_EVENTS; i++)
        if (cache->maps[i] != NULL)
            edge_shared_unref(&cache->maps[i]->shared);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* A fresh map of event_id with a reference for the caller, or NULL. */
static struct seatmap *cache_get(struct edge_seatmap_cache *cache, uint64_t event_id, uint32_t fresh_ms)
{
    struct seatmap *found = NULL;
    uint64_t now = edge_monotonic_ms();
    pthread_mutex_lock(&cache->lock);
    for (uint32_t i = 0; i < EDGE_SEATMAP_CACHE_EVENTS; i++) {
        struct seatmap *map = cache->maps[i];
        if (map != NULL && map->event_id == event_id && now - map->fetched_ms < fresh_ms) {
            edge_shared_ref(&map->shared);
            found = map;
            break;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

/* Keeps map (one more reference) in place of the event's older one, or of the oldest entry. */
static void cache_put(struct edge_seatmap_cache *cache, struct seatmap *map)
{
    struct seatmap *dropped = NULL;
    pthread_mutex_lock(&cache->lock);
    uint32_t slot = UINT32_MAX, empty = UINT32_MAX, oldest = 0;
    for (uint32_t i = 0; i < EDGE_SEATMAP_CACHE_EVENTS; i++) {
        struct seatmap *entry = cache->maps[i];
        if (entry == NULL) {
            if (empty == UINT32_MAX)
                empty = i;
        } else if (entry->event_id == map->event_id) {
            slot = i;
            break;
        } else if (cache->maps[oldest] == NULL || entry->fetched_ms < cache->maps[oldest]->fetched_ms) {
            oldest = i;
        }
    }
    if (slot == UINT32_MAX)
        slot = empty != UINT32_MAX ? empty : oldest;
    struct seatmap *old = cache->maps[slot];
    bool newer = old == NULL || old->event_id != map->event_id || map->version >= old->version ||
                 map->catalog_version != old->catalog_version;
    if (newer) {
        edge_shared_ref(&map->shared);
        cache->maps[slot] = map;
        dropped = old;
    }
    pthread_mutex_unlock(&cache->lock);
    if (dropped != NULL)
        edge_shared_unref(&dropped->shared);
}

/* On the gRPC thread: the reply as JSON and gzip, once for every reader. */
static void render(struct edge_call *call)
{
    if (call->code != GRPC_STATUS_OK)
        return;
    const Tiketi__V1__SeatMap *reply = (const void *)call->reply;
    json_t *seats = json_array();
    for (size_t i = 0; i < reply->n_seats; i++) {
        const Tiketi__V1__SeatInfo *s = reply->seats[i];
        json_t *seat = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:s}", "seat_id", s->seat_id, "section", s->section,
                                 "row", (json_int_t)s->row, "number", (json_int_t)s->number, "label", s->label,
                                 "price", (json_int_t)s->price_cents, "status", s->status);
        if (seat == NULL) {
            json_decref(seats);
            return; /* not UTF-8: done() answers 502 */
        }
        json_array_append_new(seats, seat);
    }
    json_t *body = json_pack("{s:I, s:I, s:o}", "version", (json_int_t)reply->version, "catalog_version",
                             (json_int_t)reply->catalog_version, "seats", seats);
    struct seatmap *map = calloc(1, sizeof(*map));
    TK_ASSERT(body != NULL && map != NULL);
    edge_shared_init(&map->shared, 1, seatmap_release);
    map->event_id = (uint64_t)(uintptr_t)call->data;
    map->version = reply->version;
    map->catalog_version = reply->catalog_version;
    map->fetched_ms = edge_monotonic_ms();
    snprintf(map->etag, sizeof(map->etag), "W/\"%llu.%llu\"", (unsigned long long)reply->version,
             (unsigned long long)reply->catalog_version);
    map->json = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    TK_ASSERT(map->json != NULL);
    map->json_len = strlen(map->json);
    if (map->json_len >= GZIP_BYTES_MIN && !edge_gzip(map->json, map->json_len, &map->gzip, &map->gzip_len))
        map->gzip = NULL;
    call->prepared = map;
    call->prepared_free = seatmap_free_prepared;
}

static void on_pool_dispose(void *p)
{
    struct seatmap **slot = p;
    edge_shared_unref(&(*slot)->shared);
}

static bool etag_matches(struct edge_request *r, const struct seatmap *map)
{
    size_t len;
    const char *value = edge_header(r, "if-none-match", &len);
    if (value == NULL)
        return false;
    if (len == 1 && value[0] == '*')
        return true;
    /* weak comparison: W/ prefixes do not matter */
    const char *tag = map->etag + 2; /* skip "W/" */
    size_t tag_len = strlen(tag);
    for (size_t i = 0; i + tag_len <= len; i++)
        if (memcmp(value + i, tag, tag_len) == 0)
            return true;
    return false;
}

/* Answers r from map; takes the caller's reference. */
static void serve(struct edge_request *r, struct seatmap *map)
{
    struct seatmap **slot = h2o_mem_alloc_shared(&r->req->pool, sizeof(*slot), on_pool_dispose);
    *slot = map; /* the reference now lives as long as the request */
    edge_add_header(r, "etag", map->etag);
    edge_add_header(r, "cache-control", "no-cache");
    edge_add_header(r, "vary", "Accept-Encoding");
    if (etag_matches(r, map)) {
        atomic_fetch_add_explicit(&r->server->metrics.seatmap_not_modified, 1, memory_order_relaxed);
        edge_send_empty(r, 304);
        return;
    }
    if (map->gzip != NULL && edge_accepts_gzip(r->req)) {
        edge_add_header(r, "content-encoding", "gzip");
        edge_send_bytes(r, 200, "application/json", h2o_iovec_init(map->gzip, map->gzip_len));
        return;
    }
    edge_send_bytes(r, 200, "application/json", h2o_iovec_init(map->json, map->json_len));
}

static void on_seat_map(struct edge_call *call)
{
    struct edge_request *r = call->request;
    if (call->code != GRPC_STATUS_OK) {
        edge_send_rpc_error(r, &call->error);
        return;
    }
    struct seatmap *map = call->prepared;
    if (map == NULL) {
        edge_send_problem(r, 502, "event-svc answered with a seat map that cannot be sent as JSON");
        return;
    }
    call->prepared = NULL; /* ours now */
    if (r->server->config->seatmap_cache_ms > 0)
        cache_put(r->server->seatmaps, map);
    serve(r, map);
}

void edge_api_event_seats(struct edge_request *r)
{
    struct edge_server *server = r->server;
    uint32_t fresh_ms = server->config->seatmap_cache_ms;
    struct seatmap *cached = fresh_ms > 0 ? cache_get(server->seatmaps, r->match.event_number, fresh_ms) : NULL;
    if (cached != NULL) {
        atomic_fetch_add_explicit(&server->metrics.seatmap_cache_hits, 1, memory_order_relaxed);
        serve(r, cached);
        return;
    }
    atomic_fetch_add_explicit(&server->metrics.seatmap_cache_misses, 1, memory_order_relaxed);
    Tiketi__V1__GetEventRequest request = TIKETI__V1__GET_EVENT_REQUEST__INIT;
    request.event_id = r->match.event_id;
    edge_call_start_prepared(r, EDGE_DEP_EVENT, EDGE_M_GET_SEAT_MAP, &request.base, &tiketi__v1__seat_map__descriptor,
                             render, on_seat_map, (void *)(uintptr_t)r->match.event_number);
}
