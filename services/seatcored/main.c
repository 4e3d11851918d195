/* main.c — seatcored: the engine's daemon.
 *
 * Start: settings (flags, env), the admission key, the engine (recovering from
 * the data directory: replies to writes are only sent once durable), the gRPC
 * server with SeatCore and Health, /metrics over HTTP, the watcher thread for
 * streams and the ticker (expiries, admissions, snapshots). Then SERVING.
 * Stop (SIGTERM/SIGINT): NOT_SERVING, no new calls, calls in flight finish
 * within the grace period (their replies wait for the WAL, which keeps running),
 * then the engine flushes and closes, and the process exits 0.
 *
 * When the engine stops taking writes (its WAL failed: disk full, I/O error), the
 * ticker notices within a tick: NOT_SERVING, the same shutdown, and exit status
 * SEATCORED_EXIT_ENGINE_FAILED, so that the supervisor (tools/supervise, a
 * Kubernetes restart) starts the shard again and recovery reconciles memory with
 * what reached the log. Staying up would serve reads but refuse every write for
 * ever while reporting SERVING (found by tests/reliability, wal-disk-full): the
 * engine cannot resume by itself, because after a failed write or fsync only
 * recovery from the file can tell what is durable. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc_admin_http.h"
#include "rpc_health.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "seatcored.h"
#include "tk_assert.h"
#include "token.h"

/* The engine failed while serving (see the top of this file); 1 and 2 are start-up
 * and configuration failures. */
#define SEATCORED_EXIT_ENGINE_FAILED 3

struct ticker {
    struct sc_engine *engine;
    struct rpc_server *server;
    struct rpc_health *health;
    uint32_t tick_ms;
    pthread_t thread;
    _Atomic bool stop;
    _Atomic bool engine_failed;
};

/* Once the engine refuses writes, stop serving so that a restart recovers it. */
static void ticker_check_engine(struct ticker *ticker)
{
    enum tk_status health = sc_engine_health(ticker->engine);
    if (health == TK_OK || atomic_exchange(&ticker->engine_failed, true))
        return;
    TK_ASSERT(ticker->server != NULL && ticker->health != NULL);
    rpc_log(RPC_LOG_ERROR, "",
            "the engine stopped taking writes (%s: its WAL failed); not serving, exiting with status %d so that a "
            "restart recovers from the log",
            tk_status_name(health), SEATCORED_EXIT_ENGINE_FAILED);
    rpc_health_set_serving(ticker->health, false);
    rpc_server_stop(ticker->server);
}

static void *ticker_main(void *arg)
{
    struct ticker *ticker = arg;
    while (!atomic_load(&ticker->stop)) {
        sc_engine_tick(ticker->engine);
        ticker_check_engine(ticker);
        struct timespec pause = {.tv_sec = ticker->tick_ms / 1000, .tv_nsec = (ticker->tick_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static int open_engine(const struct seatcored_config *config, struct sc_engine **engine, struct token_key *key)
{
    char err[512];
    if (config->token_key_file[0] != '\0' &&
        token_key_load_file(config->token_key_file, key, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "admission token key: %s", err);
        return -1;
    }
    struct sc_engine_config engine_config = {
        .events_max = config->events_max,
        .idempotency_keys = config->idempotency_keys,
        .data_dir = config->memory_only ? NULL : config->data_dir,
        .snapshot_every_bytes = (uint64_t)config->snapshot_every_mb << 20,
        .token_key = key->len ? key->bytes : NULL,
        .token_key_len = key->len,
        .log = rpc_log_sink,
    };
    enum tk_status status = sc_engine_open(engine, &engine_config, err, sizeof(err));
    if (status != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot open the engine: %s (%s)", err, tk_status_name(status));
        return -1;
    }
    if (key->len == 0)
        rpc_log(RPC_LOG_WARN, "", "no --token-key-file: events with a waiting room cannot be created");
    return 0;
}

static struct rpc_server *start_server(const struct seatcored_config *config, struct seatcored *daemon,
                                       struct rpc_health *health)
{
    struct rpc_server_config server_config = {.listen = config->listen, .cq_threads = config->cq_threads,
                                              .calls_max = config->calls_max,
                                              .max_message_bytes = config->max_message_bytes};
    struct rpc_server *server;
    char err[512];
    if (rpc_server_create(&server, &server_config, seatcored_methods, seatcored_method_count, daemon, err,
                          sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot start the gRPC server: %s", err);
        return NULL;
    }
    rpc_health_register(health, server);
    rpc_server_start(server);
    return server;
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    struct seatcored_config config;
    int parsed = seatcored_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("seatcored", config.log_level);
    if (config.check_only) {
        printf("seatcored: configuration ok\n");
        return 0;
    }
    struct token_key key = {0};
    struct seatcored daemon = {.config = &config};
    if (open_engine(&config, &daemon.engine, &key) != 0)
        return 1;
    static const char *const services[] = {"tiketi.v1.SeatCore"};
    struct rpc_health *health = rpc_health_create(services, 1);
    daemon.watch = seatcored_watch_start(&daemon, config.watchers_max);
    rpc_metrics_add_writer(seatcored_metrics_write, &daemon);
    struct rpc_admin_http *admin = NULL;
    char err[512];
    struct rpc_server *server = start_server(&config, &daemon, health);
    if (server == NULL || rpc_admin_http_start(&admin, config.metrics_listen, health, err, sizeof(err)) != TK_OK) {
        if (server != NULL)
            rpc_log(RPC_LOG_ERROR, "", "%s", err);
        rpc_server_destroy(server);
        seatcored_watch_stop(daemon.watch);
        sc_engine_close(daemon.engine);
        return 1;
    }
    struct ticker ticker = {.engine = daemon.engine, .server = server, .health = health, .tick_ms = config.tick_ms};
    pthread_create(&ticker.thread, NULL, ticker_main, &ticker);
    rpc_health_set_serving(health, true);
    rpc_log(RPC_LOG_INFO, "", "serving SeatCore on %s (port %d), metrics on %s, shard %u of %u, %s",
            config.listen, rpc_server_port(server), config.metrics_listen, config.shard_id, config.shard_count,
            config.memory_only ? "memory only" : config.data_dir);
    rpc_server_run(server, config.grace_ms);
    atomic_store(&ticker.stop, true);
    pthread_join(ticker.thread, NULL);
    seatcored_watch_stop(daemon.watch);
    sc_engine_close(daemon.engine); /* flushes the WAL: every answered change is durable */
    rpc_server_destroy(server);
    rpc_admin_http_stop(admin);
    rpc_health_destroy(health);
    token_key_wipe(&key);
    if (atomic_load(&ticker.engine_failed)) {
        rpc_log(RPC_LOG_ERROR, "", "stopped: the engine had failed (exit status %d)", SEATCORED_EXIT_ENGINE_FAILED);
        return SEATCORED_EXIT_ENGINE_FAILED;
    }
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
