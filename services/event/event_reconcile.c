/* event_reconcile.c — settles events a crash left 'pending'.
 *
 * A 'pending' row means a CreateEvent was cut short between writing the
 * catalog and marking it ready (the process died, or the database failed at
 * the last step). For each such row, under the same advisory lock a creation
 * holds (so a creation in progress, here or in another replica, is skipped),
 * the owning shard is asked with GetEvent:
 *   - it has the event with the catalog's layout: mark the row 'ready';
 *   - NOT_FOUND: delete the row (and its sections and seats). The caller never
 *     got OK for it (OK is only sent once the engine holds the event), so
 *     removing it agrees with whatever answer, or lack of one, it received;
 *   - the shard is down, or its event differs: leave it and log; the next
 *     round (every --reconcile-interval-s) tries again.
 * Runs once at start (before SERVING) and then periodically on a worker. */
#include <inttypes.h>
#include <stdio.h>

#include "event_db.h"
#include "event_engine.h"
#include "event_svc.h"
#include "rpc_log.h"
#include "tk_assert.h"
#include "tk_clock.h"

#define RECONCILE_BATCH_MAX 64u
/* A round stops early past this, so a shard that hangs (each GetEvent waits for
 * its deadline) neither delays start-up nor holds a worker for long. */
#define RECONCILE_ROUND_MS_MAX 10000u

enum settle { SETTLED_READY, SETTLED_DELETED, SETTLED_LATER };

static enum settle settle_locked(struct event_svc *svc, PGconn *pg, uint64_t id)
{
    struct event_row row;
    struct event_section sections[TK_SECTIONS_PER_EVENT_MAX];
    uint32_t section_count = 0;
    bool found;
    struct rpc_error error;
    if (!event_db_get(pg, id, false, &row, &found, &error) ||
        (found && !event_db_sections(pg, id, sections, &section_count, &error))) {
        rpc_log(RPC_LOG_WARN, "", "half-made event %" PRIu64 ": %s", id, error.message);
        return SETTLED_LATER;
    }
    if (!found || row.ready)
        return SETTLED_LATER; /* settled by someone else meanwhile */
    struct rpc_call_options options = {.timeout_ms = svc->config->engine_timeout_ms};
    Tiketi__V1__EventInfo *info = NULL;
    grpc_status_code code = event_engine_get(svc, id, &options, &info, &error);
    bool same = code == GRPC_STATUS_OK && event_engine_matches(info, row.capacity, sections, section_count);
    if (info != NULL)
        protobuf_c_message_free_unpacked(&info->base, NULL);
    if (same && event_db_mark_ready(pg, id, &error))
        return SETTLED_READY;
    if (code == GRPC_STATUS_NOT_FOUND && event_db_delete_pending(pg, id, &error))
        return SETTLED_DELETED;
    if (code == GRPC_STATUS_OK && !same)
        rpc_log(RPC_LOG_ERROR, "", "half-made event %" PRIu64 ": its shard holds an event with this id but another "
                "layout; left pending for an operator", id);
    else
        rpc_log(RPC_LOG_WARN, "", "half-made event %" PRIu64 " left for the next round: %s %s", id,
                rpc_code_name(code == GRPC_STATUS_OK || code == GRPC_STATUS_NOT_FOUND ? error.code : code),
                error.message);
    return SETTLED_LATER;
}

static enum settle settle(struct event_svc *svc, PGconn *pg, uint64_t id)
{
    bool got = false;
    struct rpc_error error;
    if (!event_db_lock(pg, id, false, &got, &error) || !got)
        return SETTLED_LATER; /* being created right now, or the database failed */
    enum settle result = settle_locked(svc, pg, id);
    event_db_unlock(pg, id);
    return result;
}

uint32_t event_reconcile(struct event_svc *svc, PGconn *pg, uint32_t max)
{
    TK_ASSERT(svc != NULL && pg != NULL && max >= 1);
    uint64_t ids[RECONCILE_BATCH_MAX];
    uint32_t count = 0, resolved = 0;
    struct rpc_error error;
    if (max > RECONCILE_BATCH_MAX)
        max = RECONCILE_BATCH_MAX;
    if (!event_db_pending(pg, ids, max, &count, &error)) {
        rpc_log(RPC_LOG_WARN, "", "looking for half-made events: %s", error.message);
        return 0;
    }
    uint64_t started_ns = tk_monotonic_ns();
    for (uint32_t i = 0; i < count; i++) {
        if (tk_monotonic_ns() - started_ns > (uint64_t)RECONCILE_ROUND_MS_MAX * 1000000u) {
            rpc_log(RPC_LOG_WARN, "", "half-made events: round cut short after %u ms; %u left for the next one",
                    RECONCILE_ROUND_MS_MAX, count - i);
            break;
        }
        enum settle result = settle(svc, pg, ids[i]);
        if (result == SETTLED_READY) {
            atomic_fetch_add_explicit(&svc->metrics.pending_ready, 1, memory_order_relaxed);
            rpc_log(RPC_LOG_INFO, "", "half-made event %" PRIu64 " finished: its shard has it, marked ready", ids[i]);
        } else if (result == SETTLED_DELETED) {
            atomic_fetch_add_explicit(&svc->metrics.pending_deleted, 1, memory_order_relaxed);
            rpc_log(RPC_LOG_INFO, "", "half-made event %" PRIu64 " removed: its shard does not have it", ids[i]);
        }
        resolved += result != SETTLED_LATER;
    }
    return resolved;
}

void event_reconcile_job(struct svc_worker *worker, void *ctx)
{
    struct event_svc *svc = ctx;
    if (svc_worker_pg_ok(worker))
        event_reconcile(svc, worker->pg, RECONCILE_BATCH_MAX);
    atomic_store(&svc->reconcile_queued, false);
}
