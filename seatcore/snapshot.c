/* snapshot.c — snapshots bound recovery time.
 *
 * A snapshot is the seat words, hold slots, user table and queue of every event,
 * plus the live idempotency answers, taken while writers keep running (a fuzzy
 * copy), tagged with the WAL position reserved *before* the copy began. Any change
 * that the copy missed has a record at or after that position, and records apply
 * by version (record.h), so "snapshot + replay from its LSN" is exact. Two rules
 * make it safe:
 * - a snapshot is published (renamed into place) only after the WAL is durable up
 *   to the position reserved when the copy ended, so it never contains a change
 *   whose record could still be lost;
 * - a hold being ended (BUSY slot) or a seat being returned (LOCKED) is waited
 *   out rather than copied half done: those operations log before they change
 *   seats, so their record may precede the snapshot's LSN and would not replay;
 * - the previous snapshot and the WAL since *its* LSN are kept, so a snapshot that
 *   is unreadable later (bit rot) still leaves a complete recovery path.
 *
 * File: snap-<16 hex digits of the start LSN>.snap, little-endian:
 *   "TKSNAP01" u32 format u64 start_lsn i64 taken_at_ms u32 event_count
 *   per event: spec, u32 state, u64 version,
 *              u32 holds_max, per slot u64 word (+ owner, expiry, 10 seats if active),
 *              u64 seat words[capacity],
 *              u32 user_count, (u32 index, u64 word) per user,
 *              u32 queue_bytes, queue snapshot
 *   idempotency answers, u32 crc32c of everything before it.
 * Trade-off: the whole snapshot is built in memory and written in one go; at the
 * limits (4096 events of 200,000 seats) that is large, but it keeps the format
 * simple and the write a single durable step. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "queue.h"
#include "record.h"
#include "wal_io.h"

#define SNAPSHOT_MAGIC UINT64_C(0x31305041534e4b54) /* "TKSNAP01" */
#define SNAPSHOT_FORMAT 1u
#define SNAPSHOT_FILES_MAX 64u

static uint64_t snapshot_event_bound(const struct sc_event *ev)
{
    uint64_t bytes = 4096 + 8u * ev->capacity + 4 + (uint64_t)ev->holds_max * (8 + 8 + 8 + 4 * TK_SEATS_PER_HOLD_MAX);
    bytes += 4 + ((uint64_t)ev->users_mask + 1) * 12;
    if (ev->queue != NULL)
        bytes += 4 + queue_snapshot_size(ev->queue);
    return bytes;
}

#define SNAPSHOT_WAIT_ROUNDS_MAX 100000u /* sched_yield rounds for one BUSY slot or LOCKED seat */

/* A slot being ended (BUSY) is waited out: its record may precede the snapshot's
 * LSN, so the copy must show the end complete. A slot being filled (RESERVED) is
 * stored as free: its record comes after the LSN and replays if it was logged. */
static bool snapshot_put_slot(struct hold_slot *s, struct tk_buf *buf)
{
    for (uint32_t round = 0; round < SNAPSHOT_WAIT_ROUNDS_MAX; round++) {
        uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
        if (slot_word_state(w) == SLOT_BUSY) {
            sched_yield();
            continue;
        }
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        int64_t expires = atomic_load_explicit(&s->expires_at_ms, memory_order_relaxed);
        uint32_t seats[TK_SEATS_PER_HOLD_MAX];
        for (uint32_t k = 0; k < TK_SEATS_PER_HOLD_MAX; k++)
            seats[k] = atomic_load_explicit(&s->seats[k], memory_order_relaxed);
        bool active = slot_word_state(w) == SLOT_ACTIVE;
        if (active && atomic_load_explicit(&s->word, memory_order_acquire) != w)
            continue; /* changed while read: take it again */
        tk_put_u64(buf, active ? w : slot_word(SLOT_FREE, slot_word_end(w), slot_word_gen(w)));
        if (active) {
            tk_put_u64(buf, owner);
            tk_put_i64(buf, expires);
            for (uint32_t k = 0; k < TK_SEATS_PER_HOLD_MAX; k++)
                tk_put_u32(buf, seats[k]);
        }
        return true;
    }
    return false;
}

static bool snapshot_put_seat(_Atomic uint64_t *word, struct tk_buf *buf)
{
    uint64_t w = atomic_load_explicit(word, memory_order_acquire);
    for (uint32_t round = 0; seat_word_state(w) == SEAT_LOCKED; round++) {
        if (round == SNAPSHOT_WAIT_ROUNDS_MAX)
            return false;
        sched_yield();
        w = atomic_load_explicit(word, memory_order_acquire);
    }
    tk_put_u64(buf, w);
    return true;
}

static void put_patch_u32(struct tk_buf *buf, size_t at, uint32_t value)
{
    if (buf->failed)
        return;
    struct tk_buf patch;
    tk_buf_init(&patch, buf->data + at, 4);
    tk_put_u32(&patch, value);
}

/* Slots before seats (see the file comment); users last, since a sold seat
 * refers to a user entry and entries are only ever added. */
static enum tk_status snapshot_put_event(struct sc_event *ev, struct tk_buf *buf)
{
    rec_put_spec(buf, &ev->spec);
    tk_put_u32(buf, atomic_load(&ev->state));
    tk_put_u64(buf, atomic_load(&ev->version));
    tk_put_u32(buf, ev->holds_max);
    for (uint32_t i = 0; i < ev->holds_max; i++)
        if (!snapshot_put_slot(&ev->slots[i], buf))
            return TK_ERR_BUSY;
    for (uint32_t seat = 0; seat < ev->capacity; seat++)
        if (!snapshot_put_seat(&ev->seats[seat], buf))
            return TK_ERR_BUSY;
    size_t count_at = buf->len;
    uint32_t users = 0;
    tk_put_u32(buf, 0);
    for (uint32_t i = 0; i <= ev->users_mask; i++) {
        uint64_t w = atomic_load_explicit(&ev->users[i], memory_order_acquire);
        if (w == 0)
            continue;
        tk_put_u32(buf, i);
        tk_put_u64(buf, w);
        users++;
    }
    put_patch_u32(buf, count_at, users);
    count_at = buf->len;
    tk_put_u32(buf, 0);
    if (ev->queue != NULL) {
        size_t queue_start = buf->len;
        queue_snapshot_write(ev->queue, buf);
        put_patch_u32(buf, count_at, (uint32_t)(buf->len - queue_start));
    }
    return TK_OK;
}

/* Builds the whole snapshot in memory; the caller frees buf->data. */
static enum tk_status snapshot_build(struct sc_engine *engine, uint64_t start_lsn, struct tk_buf *buf)
{
    uint32_t count = atomic_load_explicit(&engine->event_count, memory_order_acquire);
    uint64_t bound = 64 + idem_snapshot_size(engine->idem);
    for (uint32_t i = 0; i < count; i++)
        bound += snapshot_event_bound(engine->events[i]);
    uint8_t *data = malloc(bound);
    if (data == NULL)
        return TK_ERR_FULL;
    tk_buf_init(buf, data, bound);
    int64_t now_ms = tk_clock_now_ms(engine->clock);
    tk_put_u64(buf, SNAPSHOT_MAGIC);
    tk_put_u32(buf, SNAPSHOT_FORMAT);
    tk_put_u64(buf, start_lsn);
    tk_put_i64(buf, now_ms);
    tk_put_u32(buf, count);
    for (uint32_t i = 0; i < count; i++) {
        enum tk_status status = snapshot_put_event(engine->events[i], buf);
        if (status != TK_OK) {
            free(data);
            return status;
        }
    }
    idem_snapshot_write(engine->idem, now_ms, buf);
    uint32_t crc = tk_crc32c(0, buf->data, buf->len);
    tk_put_u32(buf, crc);
    TK_ASSERT(!buf->failed); /* the bound covers everything written */
    return TK_OK;
}

static void snapshot_path(char *out, size_t len, const char *dir, uint64_t lsn)
{
    int n = snprintf(out, len, "%s/snap-%016llx.snap", dir, (unsigned long long)lsn);
    TK_ASSERT(n > 0 && (size_t)n < len);
}

static enum tk_status snapshot_store(struct sc_engine *engine, uint64_t lsn, const struct tk_buf *buf)
{
    struct wal_io *io = engine->io;
    char tmp[TK_WAL_PATH_BYTES_MAX], path[TK_WAL_PATH_BYTES_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s/snap.tmp", engine->data_dir);
    TK_ASSERT(n > 0 && (size_t)n < sizeof(tmp));
    snapshot_path(path, sizeof(path), engine->data_dir, lsn);
    int handle = io->open(io, tmp, WAL_IO_OPEN_WRITE | WAL_IO_OPEN_TRUNCATE);
    if (handle < 0)
        return TK_ERR_IO;
    int rc = 0;
    for (size_t off = 0; off < buf->len && rc == 0;) {
        size_t chunk = buf->len - off < (64u << 20) ? buf->len - off : (64u << 20);
        struct iovec iov = {.iov_base = buf->data + off, .iov_len = chunk};
        rc = wal_io_pwritev_all(io, handle, &iov, 1, off);
        off += chunk;
    }
    if (rc == 0)
        rc = io->fdatasync(io, handle);
    io->close(io, handle);
    if (rc == 0)
        rc = io->rename(io, tmp, path);
    if (rc == 0)
        rc = io->sync_dir(io, engine->data_dir);
    return rc == 0 ? TK_OK : TK_ERR_IO;
}

struct snapshot_list {
    uint64_t lsns[SNAPSHOT_FILES_MAX];
    uint32_t count;
};

static int snapshot_list_add(void *ctx, const char *name)
{
    struct snapshot_list *list = ctx;
    unsigned long long lsn;
    char tail[8];
    if (sscanf(name, "snap-%16llx.%7s", &lsn, tail) != 2 || strcmp(tail, "snap") != 0)
        return 0;
    if (list->count < SNAPSHOT_FILES_MAX)
        list->lsns[list->count++] = lsn;
    return 0;
}

static int compare_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

static enum tk_status snapshot_list_dir(struct sc_engine *engine, struct snapshot_list *list)
{
    list->count = 0;
    int rc = engine->io->list(engine->io, engine->data_dir, "snap-", snapshot_list_add, list);
    if (rc < 0)
        return TK_ERR_IO;
    qsort(list->lsns, list->count, sizeof(list->lsns[0]), compare_desc);
    return TK_OK;
}

/* Keeps the two newest snapshots and the WAL from the older of them. */
static void snapshot_prune(struct sc_engine *engine)
{
    struct snapshot_list list;
    if (snapshot_list_dir(engine, &list) != TK_OK || list.count < 2)
        return;
    for (uint32_t i = 2; i < list.count; i++) {
        char path[TK_WAL_PATH_BYTES_MAX];
        snapshot_path(path, sizeof(path), engine->data_dir, list.lsns[i]);
        engine->io->unlink(engine->io, path);
    }
    wal_truncate_before(engine->wal, list.lsns[1]);
}

enum tk_status snapshot_write(struct sc_engine *engine)
{
    TK_ASSERT(engine->wal != NULL && engine->data_dir != NULL);
    uint64_t start_lsn = wal_reserved_lsn(engine->wal);
    struct tk_buf buf;
    enum tk_status status = snapshot_build(engine, start_lsn, &buf);
    if (status != TK_OK)
        return status;
    status = wal_wait_durable(engine->wal, wal_reserved_lsn(engine->wal));
    if (status == TK_OK)
        status = snapshot_store(engine, start_lsn, &buf);
    free(buf.data);
    if (status != TK_OK)
        return status;
    engine->snapshot_lsn = start_lsn;
    snapshot_prune(engine);
    engine_logf(engine, "info", "snapshot at lsn %llu written (%zu bytes)", (unsigned long long)start_lsn, buf.len);
    return TK_OK;
}

/* ---- loading ---- */

static enum tk_status load_slots(struct sc_event *ev, struct tk_reader *r)
{
    if (tk_get_u32(r) != ev->holds_max)
        return TK_ERR_CORRUPT;
    for (uint32_t i = 0; i < ev->holds_max && !r->failed; i++) {
        struct hold_slot *s = &ev->slots[i];
        uint64_t w = tk_get_u64(r);
        /* A generation past 40 bits cannot make a hold id (hold_id_make asserts). */
        if ((slot_word_state(w) != SLOT_FREE && slot_word_state(w) != SLOT_ACTIVE) || slot_word_gen(w) > SLOT_GEN_MAX)
            return TK_ERR_CORRUPT;
        atomic_store_explicit(&s->word, w, memory_order_relaxed);
        if (slot_word_state(w) != SLOT_ACTIVE)
            continue;
        uint64_t owner = tk_get_u64(r);
        uint32_t count = user_word_count(owner);
        uint64_t user = user_word_id(owner);
        if (count < 1 || count > TK_SEATS_PER_HOLD_MAX || user == 0 || user > TK_USER_ID_MAX)
            return TK_ERR_CORRUPT;
        atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
        atomic_store_explicit(&s->expires_at_ms, tk_get_i64(r), memory_order_relaxed);
        for (uint32_t k = 0; k < TK_SEATS_PER_HOLD_MAX; k++) {
            uint32_t seat = tk_get_u32(r);
            if (k < count && seat >= ev->capacity)
                return TK_ERR_CORRUPT;
            atomic_store_explicit(&s->seats[k], seat, memory_order_relaxed);
        }
    }
    return r->failed ? TK_ERR_CORRUPT : TK_OK;
}

static enum tk_status load_seats_and_users(struct sc_event *ev, struct tk_reader *r)
{
    for (uint32_t seat = 0; seat < ev->capacity && !r->failed; seat++) {
        uint64_t w = tk_get_u64(r);
        enum sc_seat_state state = seat_word_state(w);
        if (state == SEAT_LOCKED || (state == SC_SEAT_HELD && seat_word_ref(w) >= ev->holds_max) ||
            (state == SC_SEAT_SOLD && seat_word_ref(w) > ev->users_mask))
            return TK_ERR_CORRUPT;
        atomic_store_explicit(&ev->seats[seat], w, memory_order_relaxed);
    }
    uint32_t users = tk_get_u32(r);
    if (r->failed || users > ev->users_mask + 1)
        return TK_ERR_CORRUPT;
    for (uint32_t n = 0; n < users && !r->failed; n++) {
        uint32_t index = tk_get_u32(r);
        uint64_t w = tk_get_u64(r);
        uint64_t user = user_word_id(w);
        if (index > ev->users_mask || user == 0 || user > TK_USER_ID_MAX ||
            atomic_load_explicit(&ev->users[index], memory_order_relaxed) != 0)
            return TK_ERR_CORRUPT;
        atomic_store_explicit(&ev->users[index], w, memory_order_relaxed);
    }
    return r->failed ? TK_ERR_CORRUPT : TK_OK;
}

static enum tk_status load_event(struct sc_engine *engine, struct tk_reader *r)
{
    struct sc_event_spec spec;
    const char *why;
    rec_get_spec(r, &spec);
    if (r->failed || event_spec_validate(&spec, &why) != TK_OK || engine_event(engine, spec.event_id) != NULL)
        return TK_ERR_CORRUPT;
    struct sc_event *ev;
    enum tk_status status = event_alloc(&ev, &spec);
    if (status != TK_OK)
        return status;
    uint32_t state = tk_get_u32(r);
    atomic_store(&ev->state, state);
    atomic_store(&ev->version, tk_get_u64(r));
    status = state > SC_EVENT_CANCELLED ? TK_ERR_CORRUPT : load_slots(ev, r);
    if (status == TK_OK)
        status = load_seats_and_users(ev, r);
    uint32_t queue_bytes = tk_get_u32(r);
    const uint8_t *queue_data = tk_get_bytes(r, queue_bytes);
    if (status == TK_OK && (r->failed || (queue_bytes != 0) != ev->spec.queue.enabled))
        status = TK_ERR_CORRUPT;
    if (status == TK_OK && ev->spec.queue.enabled) {
        status = engine_queue_create(engine, ev);
        struct tk_reader queue_reader;
        tk_reader_init(&queue_reader, queue_data, queue_bytes);
        if (status == TK_OK && (queue_snapshot_read(ev->queue, &queue_reader) != TK_OK ||
                                !tk_reader_done(&queue_reader)))
            status = TK_ERR_CORRUPT;
    }
    if (status == TK_OK)
        status = engine_event_register(engine, ev) == TK_OK ? TK_OK : TK_ERR_CORRUPT;
    if (status != TK_OK) {
        engine_queue_destroy(ev);
        event_free(ev);
    }
    return status;
}

/* Parses a whole snapshot into the (empty) engine; on failure the engine may hold
 * some events and the caller must discard it. */
static enum tk_status snapshot_parse(struct sc_engine *engine, const uint8_t *data, size_t len, uint64_t *lsn)
{
    if (len < 40 || tk_crc32c(0, data, len - 4) != (uint32_t)(data[len - 4] | data[len - 3] << 8 |
                                                             data[len - 2] << 16 | (uint32_t)data[len - 1] << 24))
        return TK_ERR_CORRUPT;
    struct tk_reader r;
    tk_reader_init(&r, data, len - 4);
    if (tk_get_u64(&r) != SNAPSHOT_MAGIC || tk_get_u32(&r) != SNAPSHOT_FORMAT)
        return TK_ERR_CORRUPT;
    *lsn = tk_get_u64(&r);
    (void)tk_get_i64(&r); /* taken_at_ms: for people reading the file */
    uint32_t count = tk_get_u32(&r);
    if (r.failed || count > engine->events_max)
        return TK_ERR_CORRUPT;
    for (uint32_t i = 0; i < count; i++) {
        enum tk_status status = load_event(engine, &r);
        if (status != TK_OK)
            return status;
    }
    if (idem_snapshot_read(engine->idem, &r) != TK_OK || !tk_reader_done(&r))
        return TK_ERR_CORRUPT;
    return TK_OK;
}

static enum tk_status snapshot_read_file(struct sc_engine *engine, uint64_t lsn, uint8_t **data, size_t *len)
{
    char path[TK_WAL_PATH_BYTES_MAX];
    snapshot_path(path, sizeof(path), engine->data_dir, lsn);
    int handle = engine->io->open(engine->io, path, WAL_IO_OPEN_READ);
    if (handle < 0)
        return TK_ERR_IO;
    int64_t size = engine->io->size(engine->io, handle);
    uint8_t *bytes = size > 0 ? malloc((size_t)size) : NULL;
    enum tk_status status = bytes != NULL ? TK_OK : (size < 0 ? TK_ERR_IO : TK_ERR_CORRUPT);
    for (int64_t off = 0; status == TK_OK && off < size;) {
        ssize_t got = engine->io->pread(engine->io, handle, bytes + off, (size_t)(size - off), (uint64_t)off);
        if (got <= 0)
            status = got < 0 ? TK_ERR_IO : TK_ERR_CORRUPT;
        off += got > 0 ? got : 0;
    }
    engine->io->close(engine->io, handle);
    if (status != TK_OK) {
        free(bytes);
        return status;
    }
    *data = bytes;
    *len = (size_t)size;
    return TK_OK;
}

/* Undoes a partial parse so the next (older) snapshot starts from empty. */
static void snapshot_discard(struct sc_engine *engine)
{
    uint32_t count = atomic_load(&engine->event_count);
    for (uint32_t i = 0; i < count; i++) {
        engine_queue_destroy(engine->events[i]);
        event_free(engine->events[i]);
        engine->events[i] = NULL;
    }
    for (uint32_t i = 0; i <= engine->event_ids_mask; i++) {
        atomic_store(&engine->event_ids[i], 0);
        atomic_store(&engine->event_slots[i], 0);
    }
    atomic_store(&engine->event_count, 0);
    idem_clear(engine->idem);
}

enum tk_status snapshot_load(struct sc_engine *engine, uint64_t *lsn, char *err, size_t err_len)
{
    TK_ASSERT(engine->io != NULL && engine->data_dir != NULL);
    *lsn = 0;
    struct snapshot_list list;
    if (snapshot_list_dir(engine, &list) != TK_OK) {
        snprintf(err, err_len, "cannot list data directory %s", engine->data_dir);
        return TK_ERR_IO;
    }
    for (uint32_t i = 0; i < list.count; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        enum tk_status status = snapshot_read_file(engine, list.lsns[i], &data, &len);
        if (status == TK_OK)
            status = snapshot_parse(engine, data, len, lsn);
        free(data);
        if (status == TK_OK) {
            engine_logf(engine, "info", "loaded snapshot %s/snap-%016llx.snap", engine->data_dir,
                        (unsigned long long)list.lsns[i]);
            return TK_OK;
        }
        engine_logf(engine, "warn", "snapshot %s/snap-%016llx.snap is unreadable (%s); trying an older one",
                    engine->data_dir, (unsigned long long)list.lsns[i], tk_status_name(status));
        snapshot_discard(engine);
        *lsn = 0;
    }
    if (list.count > 0) {
        snprintf(err, err_len, "no readable snapshot among the %u in %s: refusing to start from an incomplete log",
                 list.count, engine->data_dir);
        return TK_ERR_CORRUPT;
    }
    return TK_OK;
}
