/* event_seatmap.c — GetSeatMap: the cached catalog joined with live states.
 *
 *   1. the event's catalog version (PostgreSQL, one primary-key read);
 *   2. the catalog for that version from Redis; on a miss (or an entry that
 *      does not decode) read it from PostgreSQL in one snapshot, serialize it
 *      and store it (event_cache.h);
 *   3. GetAvailability from the owning shard: 2 bits per seat and a version;
 *   4. one SeatInfo per seat, strings carved from the call's arena.
 * The reply carries both versions (engine availability and catalog) so the
 * edge can make an ETag that changes when either does. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_cache.h"
#include "event_db.h"
#include "event_engine.h"
#include "event_seatmap_codec.h"
#include "event_svc.h"
#include "tk_assert.h"

#define STRING_CHUNK_BYTES (64u << 10)

/* Strings for many small fields without a 16-byte-aligned allocation each. */
struct string_pool {
    struct rpc_arena *arena;
    char *next;
    size_t left;
};

static char *pool_copy(struct string_pool *pool, const char *s, size_t len)
{
    if (pool->left < len + 1) {
        size_t size = len + 1 > STRING_CHUNK_BYTES ? len + 1 : STRING_CHUNK_BYTES;
        if ((pool->next = rpc_arena_alloc(pool->arena, size)) == NULL)
            return NULL;
        pool->left = size;
    }
    char *out = pool->next;
    memcpy(out, s, len);
    out[len] = '\0';
    pool->next += len + 1;
    pool->left -= len + 1;
    return out;
}

/* Decodes every seat once: an entry that fails is treated as a miss. */
static bool catalog_valid(const uint8_t *bytes, size_t len, uint64_t id, uint64_t version)
{
    struct event_seatmap_reader reader;
    static _Thread_local struct event_seat seat;
    if (!event_seatmap_reader_open(&reader, bytes, len, id, version))
        return false;
    int rc;
    while ((rc = event_seatmap_next(&reader, &seat)) == 1) {
    }
    return rc == 0;
}

struct catalog {
    redisReply *cached; /* the bytes live in the reply on a hit */
    uint8_t *loaded;    /* or were read from PostgreSQL (malloc'd) */
    const uint8_t *bytes;
    size_t len;
    uint64_t version;
};

static void catalog_free(struct catalog *catalog)
{
    if (catalog->cached != NULL)
        freeReplyObject(catalog->cached);
    free(catalog->loaded);
}

/* Steps 1 and 2. false: error filled (NOT_FOUND, database failures). */
static bool catalog_get(struct event_svc *svc, struct svc_worker *worker, uint64_t id, struct catalog *catalog,
                        struct rpc_error *error)
{
    uint32_t capacity;
    bool found;
    memset(catalog, 0, sizeof(*catalog));
    if (!event_db_catalog_version(worker->pg, id, &catalog->version, &capacity, &found, error))
        return false;
    enum event_cache_result cached = EVENT_CACHE_MISS;
    if (found)
        cached = event_cache_get(worker, &svc->metrics, id, catalog->version, &catalog->cached);
    if (cached == EVENT_CACHE_HIT && catalog_valid((const uint8_t *)catalog->cached->str, catalog->cached->len, id,
                                                   catalog->version)) {
        atomic_fetch_add_explicit(&svc->metrics.cache_hits, 1, memory_order_relaxed);
        catalog->bytes = (const uint8_t *)catalog->cached->str;
        catalog->len = catalog->cached->len;
        return true;
    }
    if (cached == EVENT_CACHE_HIT) { /* unreadable entry: replaced below */
        atomic_fetch_add_explicit(&svc->metrics.cache_errors, 1, memory_order_relaxed);
        freeReplyObject(catalog->cached);
        catalog->cached = NULL;
        cached = EVENT_CACHE_MISS;
    }
    if (found && !event_db_seat_catalog(worker->pg, id, &catalog->version, &catalog->loaded, &catalog->len, &found,
                                        error))
        return false;
    if (!found) {
        event_error_set(error, GRPC_STATUS_NOT_FOUND, "not_found", "no event %" PRIu64, id);
        return false;
    }
    atomic_fetch_add_explicit(&svc->metrics.cache_misses, 1, memory_order_relaxed);
    catalog->bytes = catalog->loaded;
    if (cached == EVENT_CACHE_MISS) /* after a Redis error, do not wait on it twice */
        event_cache_put(worker, &svc->metrics, id, catalog->version, catalog->loaded, catalog->len,
                        svc->config->cache_ttl_s);
    return true;
}

/* Step 3. */
static bool availability_get(struct event_svc *svc, struct rpc_call *call, uint64_t id,
                             Tiketi__V1__Availability **availability, struct rpc_error *error)
{
    int64_t budget = event_call_budget_ms(call, svc->config->engine_timeout_ms);
    if (budget <= 0) {
        event_error_set(error, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline_exceeded", "the deadline passed");
        return false;
    }
    struct rpc_call_options options = {.timeout_ms = budget, .request_id = rpc_call_request_id(call),
                                       .traceparent = rpc_call_traceparent(call)};
    struct rpc_error engine;
    grpc_status_code code = event_engine_availability(svc, id, &options, availability, &engine);
    if (code == GRPC_STATUS_NOT_FOUND)
        event_error_set(error, GRPC_STATUS_INTERNAL, "engine_out_of_step",
                        "event %" PRIu64 " is in the catalog but not on its shard %u", id,
                        event_engine_shard(svc, id));
    else if (code != GRPC_STATUS_OK)
        event_engine_error(svc, id, &engine, error);
    else if ((*availability)->states.len < ((*availability)->capacity + 3u) / 4u)
        event_error_set(error, GRPC_STATUS_INTERNAL, "internal", "the engine's availability of event %" PRIu64
                        " is shorter than its capacity", id);
    else
        return true;
    return false;
}

static char *const state_names[4] = {"free", "held", "sold", "unknown"};

struct seat_out {
    struct string_pool pool;
    char *sections[TK_SECTIONS_PER_EVENT_MAX];
    const Tiketi__V1__Availability *availability;
};

static bool seat_out(struct seat_out *out, const struct event_seat *seat, Tiketi__V1__SeatInfo *info)
{
    char id[12];
    int id_len = snprintf(id, sizeof(id), "%u", seat->seat);
    tiketi__v1__seat_info__init(info);
    info->seat_id = pool_copy(&out->pool, id, (size_t)id_len);
    info->label = pool_copy(&out->pool, seat->label, strlen(seat->label));
    info->section = out->sections[seat->section];
    info->row = seat->row;
    info->number = seat->number;
    info->price_cents = seat->price_cents;
    const uint8_t *states = out->availability->states.data;
    info->status = state_names[(states[seat->seat >> 2] >> ((seat->seat & 3u) * 2u)) & 3u];
    return info->seat_id != NULL && info->label != NULL;
}

/* Step 4; false with error filled. */
static bool reply_seats(struct rpc_call *call, const struct catalog *catalog,
                        const Tiketi__V1__Availability *availability, uint64_t id, struct rpc_error *error)
{
    struct rpc_arena *arena = rpc_call_arena(call);
    struct event_seatmap_reader reader;
    bool open = event_seatmap_reader_open(&reader, catalog->bytes, catalog->len, id, catalog->version);
    TK_ASSERT(open); /* validated (hit) or just written (miss) */
    struct seat_out out = {.pool = {.arena = arena}, .availability = availability};
    Tiketi__V1__SeatMap *map = rpc_arena_alloc(arena, sizeof(*map));
    Tiketi__V1__SeatInfo *items = rpc_arena_alloc(arena, ((size_t)reader.seat_count + 1) * sizeof(*items));
    Tiketi__V1__SeatInfo **list = rpc_arena_alloc(arena, ((size_t)reader.seat_count + 1) * sizeof(*list));
    bool ok = map != NULL && items != NULL && list != NULL;
    for (uint32_t s = 0; ok && s < reader.section_count; s++)
        ok = (out.sections[s] = rpc_arena_strdup(arena, reader.sections[s])) != NULL;
    static _Thread_local struct event_seat seat;
    uint32_t n = 0;
    int rc = 0;
    while (ok && (rc = event_seatmap_next(&reader, &seat)) == 1) {
        if (seat.seat >= availability->capacity) {
            event_error_set(error, GRPC_STATUS_INTERNAL, "engine_out_of_step", "event %" PRIu64 ": catalog seat %u "
                            "is past the engine's capacity %u", id, seat.seat, availability->capacity);
            return false;
        }
        ok = seat_out(&out, &seat, &items[n]);
        list[n] = &items[n];
        n++;
    }
    if (!ok) {
        event_error_set(error, GRPC_STATUS_RESOURCE_EXHAUSTED, "limit_reached",
                        "the seat map of event %" PRIu64 " does not fit in call memory", id);
        return false;
    }
    TK_ASSERT(rc == 0); /* the bytes were decoded once already */
    tiketi__v1__seat_map__init(map);
    map->version = availability->version;
    map->catalog_version = catalog->version;
    map->seats = list;
    map->n_seats = n;
    rpc_reply(call, &map->base);
    return true;
}

void event_seatmap_job(struct svc_worker *worker, void *ctx)
{
    struct event_job *job = ctx;
    struct event_svc *svc = job->svc;
    struct rpc_call *call = job->call;
    uint64_t id = job->event_id;
    TK_ASSERT(id > 0);
    struct rpc_error error;
    if (!svc_worker_pg_ok(worker)) {
        event_fail(call, GRPC_STATUS_UNAVAILABLE, "unavailable", "the database is unavailable");
        return;
    }
    struct catalog catalog;
    Tiketi__V1__Availability *availability = NULL;
    bool ok = catalog_get(svc, worker, id, &catalog, &error) &&
              availability_get(svc, call, id, &availability, &error) &&
              reply_seats(call, &catalog, availability, id, &error);
    if (!ok)
        rpc_fail(call, &error);
    catalog_free(&catalog);
    if (availability != NULL)
        protobuf_c_message_free_unpacked(&availability->base, NULL);
}
