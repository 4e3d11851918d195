/* baseline.h — tiketi-baseline: the original TIKETI design's hold path, kept as a
 * yardstick (perf/baselines/).
 *
 * Before the engine, TIKETI held seats like most ticketing back ends do: per
 * seat a Redis lock (SET NX PX) around a PostgreSQL transaction that locks the
 * seat rows (SELECT ... FOR UPDATE), checks them, marks them held, writes the
 * reservation and commits; then the Redis locks are dropped. Every hold is a
 * durable PostgreSQL write. This server does exactly that behind the same HTTP
 * contract as the edge for the calls the holds scenario makes (API.md):
 *   POST   /api/v1/admin/events                 (admin token) the event, its sections and seat rows
 *   POST   /api/v1/events/{id}/queue            no waiting room: admitted at once, a dummy token
 *   POST   /api/v1/events/{id}/holds            the original hold path (above)
 *   DELETE /api/v1/reservations/{id}            release a pending hold (one transaction)
 *   GET    /healthz
 * Access tokens are the edge's (HS256 JWTs of auth-svc, verified with the same key
 * file, svc_jwt), so the load generator signs in once and talks to either server.
 *
 * Shape: one epoll thread reads requests (HTTP/1.1 keep-alive, one request at a
 * time per connection, EPOLLONESHOT) and queues complete ones; `workers`
 * threads, each with its own PostgreSQL and Redis connection (the classic pool),
 * run them and write the answers. Bounded: connections, request size, queue. */
#ifndef BASELINE_H
#define BASELINE_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svc_jwt.h"

#define BL_CONNECTIONS_MAX 16384u
#define BL_REQUEST_BYTES_MAX 16384u
#define BL_QUEUE_MAX 65536u
#define BL_WORKERS_MAX 256u
#define BL_SEATS_PER_HOLD_MAX 10u
#define BL_LOCK_TTL_MS 5000u /* a Redis seat lock outlives a stuck transaction by at most this */

struct bl_config {
    char listen[64];
    char database_url[512];
    char redis_host[128];
    int redis_port;
    char jwt_keys[512];
    uint32_t workers;
    bool create_database;
};

struct bl_request {
    int fd;
    uint32_t conn;
    char method[8];
    char path[256];
    char authorization[4096 + 16];
    char idempotency_key[256];
    char *body;
    size_t body_len;
    bool close;
};

struct bl_response {
    int status;
    char body[2048];
};

struct bl_worker {
    uint32_t index;
    PGconn *db;
    redisContext *redis;
    const struct svc_jwt_keyset *keys;
    char release_sha[48];
};

/* baseline_hold.c: one request on a worker, its answer into response. */
void bl_handle(struct bl_worker *worker, const struct bl_request *request, struct bl_response *response);
/* baseline_db.c */
int bl_schema(PGconn *db, char *err, size_t err_len);
int bl_create_database(const char *url, char *err, size_t err_len);
bool bl_worker_connect(struct bl_worker *worker, const struct bl_config *config, char *err, size_t err_len);

#endif
