/* queue_catalog.c — which events have a waiting room, from the catalog.
 *
 * One thread with its own PostgreSQL connection re-reads the list every
 * --catalog-refresh-ms: events with queue_enabled, engine_state 'ready' (the
 * engine event exists) and not closed or cancelled, at most --feed-events-max,
 * lowest ids first. The feed copies the list each round. When PostgreSQL is
 * unreachable the last list stays in force (the feed keeps publishing) and the
 * thread reconnects on its next turn. The catalog's shard column is checked
 * against the router's choice: a mismatch means event-svc and queue-svc were
 * given different shard lists, which would send calls to the wrong engine. */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_svc.h"
#include "rpc_log.h"
#include "tk_assert.h"

struct queue_catalog {
    struct queue_svc *svc;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    uint64_t *ids; /* under lock */
    uint32_t count;
    uint64_t *scratch; /* the thread's own */
    uint32_t max;
    PGconn *pg;
    int32_t last_count, last_mismatches;
};

static const char list_sql[] =
    "SELECT id, shard FROM events WHERE queue_enabled AND engine_state = 'ready' "
    "AND status NOT IN ('closed', 'cancelled') ORDER BY id LIMIT $1";

static bool connect_pg(struct queue_catalog *catalog)
{
    if (catalog->pg != NULL && PQstatus(catalog->pg) == CONNECTION_OK)
        return true;
    if (catalog->pg != NULL)
        PQfinish(catalog->pg);
    const char *keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *values[] = {catalog->svc->config->database_url, "2", "-c statement_timeout=2000", "queue-svc",
                            NULL};
    catalog->pg = PQconnectdbParams(keys, values, 1);
    if (catalog->pg != NULL && PQstatus(catalog->pg) == CONNECTION_OK)
        return true;
    /* PQerrorMessage names the host and the reason, never the password. */
    rpc_log(RPC_LOG_WARN, "", "catalog: cannot connect to PostgreSQL: %s",
            catalog->pg ? PQerrorMessage(catalog->pg) : "out of memory");
    return false;
}

/* Reads the list into scratch; returns the count, or -1 on failure. */
static int32_t read_list(struct queue_catalog *catalog, uint32_t *mismatches)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", catalog->max);
    const char *params[] = {limit};
    PGresult *result = PQexecParams(catalog->pg, list_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        rpc_log(RPC_LOG_WARN, "", "catalog: query failed: %s", PQerrorMessage(catalog->pg));
        PQclear(result);
        return -1;
    }
    int rows = PQntuples(result);
    TK_ASSERT(rows >= 0 && (uint32_t)rows <= catalog->max); /* LIMIT $1 */
    *mismatches = 0;
    int32_t count = 0;
    for (int i = 0; i < rows; i++) {
        char *end;
        unsigned long long id = strtoull(PQgetvalue(result, i, 0), &end, 10);
        long shard = strtol(PQgetvalue(result, i, 1), NULL, 10);
        if (*end != '\0' || id == 0)
            continue; /* ids are positive BIGINTs: not expected, but never trusted */
        if (shard < 0 || (uint32_t)shard != rpc_router_shard_of(catalog->svc->router, id))
            (*mismatches)++;
        catalog->scratch[count++] = id;
    }
    PQclear(result);
    return count;
}

static void refresh(struct queue_catalog *catalog)
{
    struct queue_counters *counters = &catalog->svc->counters;
    uint32_t mismatches = 0;
    int32_t count = connect_pg(catalog) ? read_list(catalog, &mismatches) : -1;
    if (count < 0) {
        atomic_fetch_add_explicit(&counters->catalog_errors, 1, memory_order_relaxed);
        if (catalog->pg != NULL && PQstatus(catalog->pg) != CONNECTION_OK) {
            PQfinish(catalog->pg);
            catalog->pg = NULL;
        }
        return;
    }
    pthread_mutex_lock(&catalog->lock);
    memcpy(catalog->ids, catalog->scratch, (size_t)count * sizeof(uint64_t));
    catalog->count = (uint32_t)count;
    pthread_mutex_unlock(&catalog->lock);
    atomic_fetch_add_explicit(&counters->catalog_refreshes, 1, memory_order_relaxed);
    atomic_store_explicit(&counters->catalog_events, (uint32_t)count, memory_order_relaxed);
    if (count != catalog->last_count)
        rpc_log(RPC_LOG_INFO, "", "catalog: %d events with a waiting room%s", count,
                (uint32_t)count == catalog->max ? " (the --feed-events-max bound: later events are not fed)" : "");
    if ((int32_t)mismatches != catalog->last_mismatches && mismatches > 0)
        rpc_log(RPC_LOG_ERROR, "",
                "catalog: %u queued events are recorded on another shard than --seatcored-shards routes them to; "
                "check that every service has the same shard list", mismatches);
    catalog->last_count = count;
    catalog->last_mismatches = (int32_t)mismatches;
}

static void *catalog_thread(void *arg)
{
    struct queue_catalog *catalog = arg;
    uint32_t every_ms = catalog->svc->config->catalog_refresh_ms;
    pthread_mutex_lock(&catalog->lock);
    while (!catalog->stop) {
        pthread_mutex_unlock(&catalog->lock);
        refresh(catalog);
        pthread_mutex_lock(&catalog->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += every_ms / 1000;
        until.tv_nsec += (long)(every_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!catalog->stop && pthread_cond_timedwait(&catalog->wake, &catalog->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&catalog->lock);
    return NULL;
}

struct queue_catalog *queue_catalog_start(struct queue_svc *svc)
{
    TK_ASSERT(svc != NULL && svc->router != NULL);
    TK_ASSERT(svc->config->feed_events_max >= 1 && svc->config->feed_events_max <= QUEUE_FEED_EVENTS_MAX_MAX);
    struct queue_catalog *catalog = calloc(1, sizeof(*catalog));
    TK_ASSERT(catalog != NULL);
    catalog->svc = svc;
    catalog->max = svc->config->feed_events_max;
    catalog->ids = calloc(catalog->max, sizeof(uint64_t));
    catalog->scratch = calloc(catalog->max, sizeof(uint64_t));
    TK_ASSERT(catalog->ids != NULL && catalog->scratch != NULL);
    catalog->last_count = -1;
    pthread_mutex_init(&catalog->lock, NULL);
    pthread_cond_init(&catalog->wake, NULL);
    int rc = pthread_create(&catalog->thread, NULL, catalog_thread, catalog);
    TK_ASSERT(rc == 0);
    return catalog;
}

void queue_catalog_stop(struct queue_catalog *catalog)
{
    if (catalog == NULL)
        return;
    pthread_mutex_lock(&catalog->lock);
    catalog->stop = true;
    pthread_cond_signal(&catalog->wake);
    pthread_mutex_unlock(&catalog->lock);
    pthread_join(catalog->thread, NULL);
    if (catalog->pg != NULL)
        PQfinish(catalog->pg);
    pthread_cond_destroy(&catalog->wake);
    pthread_mutex_destroy(&catalog->lock);
    free(catalog->ids);
    free(catalog->scratch);
    free(catalog);
}

uint32_t queue_catalog_events(struct queue_catalog *catalog, uint64_t *ids, uint32_t max)
{
    TK_ASSERT(catalog != NULL && ids != NULL);
    pthread_mutex_lock(&catalog->lock);
    uint32_t count = catalog->count < max ? catalog->count : max;
    memcpy(ids, catalog->ids, (size_t)count * sizeof(uint64_t));
    pthread_mutex_unlock(&catalog->lock);
    TK_ASSERT(count <= max);
    return count;
}
