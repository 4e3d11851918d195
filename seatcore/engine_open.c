/* engine_open.c — engine lifecycle: open (with recovery) and close.
 *
 * Recovery order: load the newest valid snapshot (snapshot.c), open the WAL from
 * the snapshot's start LSN and replay every record through engine_replay (which
 * applies by version, so records the snapshot already contains are no-ops), then
 * rebuild each event's derived state (counts, row hints, user counts, free
 * lists). Holds that expired while the engine was down are expired by the first
 * sc_engine_tick, which logs them like any other expiry. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hold.h"
#include "queue.h"
#include "wal_io.h"

static enum tk_status replay_event_create(struct sc_engine *engine, const struct wal_record_view *record)
{
    struct sc_event_spec spec;
    if (rec_decode_event_create(record->payload, record->payload_len, &spec) != TK_OK)
        return TK_ERR_CORRUPT;
    if (engine_event(engine, spec.event_id) != NULL)
        return TK_OK; /* already in the snapshot */
    struct sc_event *ev;
    enum tk_status status = event_alloc(&ev, &spec);
    if (status != TK_OK)
        return status;
    if (ev->spec.queue.enabled)
        status = engine_queue_create(engine, ev);
    if (status == TK_OK)
        status = engine_event_register(engine, ev);
    if (status != TK_OK) {
        engine_queue_destroy(ev);
        event_free(ev);
    }
    return status;
}

static enum tk_status replay_event_state(struct sc_engine *engine, const struct wal_record_view *record)
{
    struct rec_event_state rec;
    if (rec_decode_event_state(record->payload, record->payload_len, &rec) != TK_OK)
        return TK_ERR_CORRUPT;
    struct sc_event *ev = engine_event(engine, rec.event_id);
    if (ev == NULL)
        return TK_ERR_CORRUPT;
    if (atomic_load(&ev->state) < rec.state) /* open -> closed -> cancelled only moves forward */
        atomic_store(&ev->state, rec.state);
    return TK_OK;
}

static enum tk_status replay_hold(struct sc_engine *engine, const struct wal_record_view *record)
{
    struct rec_hold rec;
    if (rec_decode_hold(record->payload, record->payload_len, &rec) != TK_OK)
        return TK_ERR_CORRUPT;
    struct sc_event *ev = engine_event(engine, rec.event_id);
    if (ev == NULL)
        return TK_ERR_CORRUPT;
    enum tk_status status = hold_replay_hold(ev, &rec);
    if (status == TK_OK && rec.idempotency_key != 0) {
        struct idem_answer answer = {.status = TK_OK, .hold_id = hold_id_make(rec.slot, rec.gen), .lsn = 0};
        idem_restore(engine->idem, rec.idempotency_key, rec.request_hash, &answer, rec.at_ms);
    }
    return status;
}

static enum tk_status replay_hold_end(struct sc_engine *engine, const struct wal_record_view *record)
{
    struct rec_hold_end rec;
    if (rec_decode_hold_end(record->payload, record->payload_len, &rec) != TK_OK)
        return TK_ERR_CORRUPT;
    struct sc_event *ev = engine_event(engine, rec.event_id);
    if (ev == NULL)
        return TK_ERR_CORRUPT;
    enum tk_status status = hold_replay_end(ev, &rec);
    if (status == TK_OK && rec.idempotency_key != 0 && rec.kind != REC_END_RELEASED) {
        /* The answer the confirm gave: OK, or "expired" if it found the hold stale. */
        struct idem_answer answer = {.status = rec.kind == REC_END_CONFIRMED ? TK_OK : TK_ERR_HOLD_EXPIRED,
                                     .hold_id = hold_id_make(rec.slot, rec.gen), .lsn = 0};
        idem_restore(engine->idem, rec.idempotency_key, rec.request_hash, &answer, rec.at_ms);
    }
    return status;
}

static enum tk_status replay_return(struct sc_engine *engine, const struct wal_record_view *record)
{
    struct rec_return rec;
    if (rec_decode_return(record->payload, record->payload_len, &rec) != TK_OK)
        return TK_ERR_CORRUPT;
    struct sc_event *ev = engine_event(engine, rec.event_id);
    if (ev == NULL)
        return TK_ERR_CORRUPT;
    return hold_replay_return(ev, &rec);
}

static enum tk_status engine_replay(void *ctx, const struct wal_record_view *record)
{
    struct sc_engine *engine = ctx;
    TK_ASSERT(engine != NULL && record != NULL);
    switch (record->type) {
    case REC_EVENT_CREATE:
        return replay_event_create(engine, record);
    case REC_EVENT_STATE:
        return replay_event_state(engine, record);
    case REC_HOLD:
        return replay_hold(engine, record);
    case REC_HOLD_END:
        return replay_hold_end(engine, record);
    case REC_RETURN:
        return replay_return(engine, record);
    default:
        if (record->type >= QUEUE_RECORD_TYPE_MIN && record->type <= QUEUE_RECORD_TYPE_MAX)
            return engine_queue_replay(engine, record->type, record->payload, record->payload_len);
        return TK_ERR_CORRUPT;
    }
}

/* An event's version names a seat map (ETags, deltas), so it must never go
 * back: replay does not count changes, and changes seen before a crash may not
 * have been logged. After recovery it becomes the largest of what the snapshot
 * said, the sum of the seat versions (every change raises it), and the wall
 * clock in microseconds (ahead of any count of changes made since the last
 * recovery, at under a million changes a second per event). */
static void event_version_after_recovery(struct sc_event *ev, int64_t now_ms)
{
    uint64_t sum = 0;
    for (uint32_t seat = 0; seat < ev->capacity; seat++)
        sum += seat_word_version(atomic_load_explicit(&ev->seats[seat], memory_order_relaxed));
    uint64_t version = atomic_load(&ev->version);
    if (sum > version)
        version = sum;
    if ((uint64_t)now_ms * 1000u > version)
        version = (uint64_t)now_ms * 1000u;
    atomic_store(&ev->version, version + 1);
}

static uint32_t round_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

static enum tk_status engine_config_check(const struct sc_engine_config *config, char *err, size_t err_len)
{
    const char *why = NULL;
    if (config->events_max > TK_EVENTS_MAX_MAX)
        why = "events_max is at most 4096";
    else if (config->idempotency_keys > TK_IDEMPOTENCY_KEYS_MAX)
        why = "idempotency_keys is at most 67108864";
    else if (config->token_key_len != 0 &&
             (config->token_key_len < TOKEN_KEY_BYTES_MIN || config->token_key_len > TOKEN_KEY_BYTES_MAX))
        why = "the admission token key must be 32..128 bytes";
    else if (config->data_dir != NULL && strlen(config->data_dir) >= TK_WAL_PATH_BYTES_MAX - 64)
        why = "data_dir path is too long";
    if (why == NULL)
        return TK_OK;
    snprintf(err, err_len, "%s", why);
    return TK_ERR_INVALID;
}

static enum tk_status engine_alloc(struct sc_engine **out, const struct sc_engine_config *config)
{
    struct sc_engine *engine = calloc(1, sizeof(*engine));
    if (engine == NULL)
        return TK_ERR_FULL;
    engine->clock = config->clock != NULL ? config->clock : &tk_clock_real;
    engine->events_max = config->events_max != 0 ? config->events_max : TK_EVENTS_MAX_DEFAULT;
    engine->event_ids_mask = round_pow2(engine->events_max * 2) - 1;
    engine->events = calloc(engine->events_max, sizeof(engine->events[0]));
    engine->event_ids = calloc((size_t)engine->event_ids_mask + 1, sizeof(engine->event_ids[0]));
    engine->event_slots = calloc((size_t)engine->event_ids_mask + 1, sizeof(engine->event_slots[0]));
    pthread_mutex_init(&engine->create_lock, NULL);
    pthread_mutex_init(&engine->snapshot_lock, NULL);
    stats_registry_init(&engine->stats);
    atomic_init(&engine->health, TK_OK);
    engine->snapshot_every_bytes = config->snapshot_every_bytes;
    engine->log = config->log;
    engine->log_ctx = config->log_ctx;
    if (config->token_key_len != 0 &&
        token_key_init(&engine->token_key, config->token_key, config->token_key_len) != TK_OK)
        return TK_ERR_INVALID;
    uint32_t keys = round_pow2(config->idempotency_keys != 0 ? config->idempotency_keys : TK_IDEMPOTENCY_KEYS_DEFAULT);
    uint32_t ttl = config->idempotency_ttl_ms != 0 ? config->idempotency_ttl_ms : TK_IDEMPOTENCY_TTL_MS_DEFAULT;
    *out = engine;
    if (engine->events == NULL || engine->event_ids == NULL || engine->event_slots == NULL)
        return TK_ERR_FULL;
    return idem_create(&engine->idem, keys < TK_IDEMPOTENCY_PROBE_MAX ? TK_IDEMPOTENCY_PROBE_MAX : keys, ttl);
}

static enum tk_status engine_recover(struct sc_engine *engine, const struct sc_engine_config *config, char *err,
                                     size_t err_len)
{
    if (config->io != NULL) {
        engine->io = config->io;
    } else {
        int rc = wal_io_default_create(&engine->io, (wal_io_log_fn)config->log, config->log_ctx);
        if (rc < 0) {
            snprintf(err, err_len, "cannot create the WAL I/O backend: error %d", -rc);
            return TK_ERR_IO;
        }
        engine->owns_io = true;
    }
    int rc = engine->io->mkdirs(engine->io, engine->data_dir);
    if (rc < 0) {
        snprintf(err, err_len, "cannot create data directory %s: %s", engine->data_dir, strerror(-rc));
        return TK_ERR_IO;
    }
    uint64_t from_lsn = 0;
    enum tk_status status = snapshot_load(engine, &from_lsn, err, err_len);
    if (status != TK_OK)
        return status;
    struct wal_config wal_config = {.dir = engine->data_dir, .io = engine->io,
                                    .ring_bytes = config->wal_ring_bytes,
                                    .segment_bytes = config->wal_segment_bytes, .log = config->log,
                                    .log_ctx = config->log_ctx};
    status = wal_open(&engine->wal, &wal_config, from_lsn, engine_replay, engine, err, err_len);
    if (status != TK_OK)
        return status;
    engine->snapshot_lsn = from_lsn;
    int64_t now_ms = tk_clock_now_ms(engine->clock);
    uint32_t count = atomic_load(&engine->event_count);
    for (uint32_t i = 0; i < count; i++) {
        status = event_rebuild_derived(engine->events[i]);
        if (status != TK_OK) {
            snprintf(err, err_len, "recovered state of event %llu in %s breaks an invariant (%s)",
                     (unsigned long long)engine->events[i]->event_id, engine->data_dir, tk_status_message(status));
            return status;
        }
        event_version_after_recovery(engine->events[i], now_ms);
        if (engine->events[i]->queue != NULL)
            queue_recovered(engine->events[i]->queue, now_ms);
    }
    engine_logf(engine, "info", "recovered %u events from %s (snapshot lsn %llu, durable lsn %llu, backend %s)",
                count, engine->data_dir, (unsigned long long)from_lsn,
                (unsigned long long)wal_durable_lsn(engine->wal), wal_backend_name(engine->wal));
    return TK_OK;
}

enum tk_status sc_engine_open(struct sc_engine **out, const struct sc_engine_config *config, char *err,
                              size_t err_len)
{
    TK_ASSERT(out != NULL && config != NULL);
    TK_ASSERT(err != NULL && err_len > 0);
    err[0] = '\0';
    enum tk_status status = engine_config_check(config, err, err_len);
    if (status != TK_OK)
        return status;
    struct sc_engine *engine = NULL;
    status = engine_alloc(&engine, config);
    if (status != TK_OK) {
        snprintf(err, err_len, "out of memory sizing the engine tables");
        goto fail;
    }
    if (config->data_dir != NULL) {
        engine->data_dir = strdup(config->data_dir);
        status = engine->data_dir != NULL ? engine_recover(engine, config, err, err_len) : TK_ERR_FULL;
        if (status != TK_OK)
            goto fail;
    }
    *out = engine;
    return TK_OK;
fail:
    sc_engine_close(engine);
    return status;
}

void sc_engine_close(struct sc_engine *engine)
{
    if (engine == NULL)
        return;
    if (engine->wal != NULL)
        wal_close(engine->wal);
    uint32_t count = atomic_load(&engine->event_count);
    TK_ASSERT(count <= engine->events_max);
    for (uint32_t i = 0; i < count; i++) {
        engine_queue_destroy(engine->events[i]);
        event_free(engine->events[i]);
    }
    if (engine->owns_io)
        wal_io_destroy(engine->io);
    idem_destroy(engine->idem);
    stats_registry_destroy(&engine->stats);
    pthread_mutex_destroy(&engine->create_lock);
    pthread_mutex_destroy(&engine->snapshot_lock);
    free(engine->events);
    free(engine->event_ids);
    free(engine->event_slots);
    free(engine->data_dir);
    token_key_wipe(&engine->token_key);
    free(engine);
}
