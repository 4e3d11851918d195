/* main.c — queue-svc: the waiting room and its Redis feed.
 *
 * Start: settings (flags, env), the shard router and the client loop for
 * engine calls, the worker pool (Leave's Redis publish), the catalog thread
 * (which events have a waiting room), the watcher thread (Watch streams), the
 * feed thread (publisher, with per-event Redis leases), then the gRPC server
 * with WaitingRoom and Health and /metrics over HTTP, SERVING.
 * Stop (SIGTERM/SIGINT): NOT_SERVING, no new calls, calls in flight finish
 * within the grace period (Watch streams end at once with UNAVAILABLE, "watch
 * again"), then the feed hands its leases back so another replica takes over
 * without waiting for them to lapse, and the process exits 0. Redis and
 * PostgreSQL need not be up at start: the feed and the catalog retry, and Join /
 * Status / Leave / Heartbeat / Watch only need the engine. */
#include <stdio.h>
#include <stdlib.h>

#include "queue_svc.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "tk_assert.h"

static void probe_redis(const struct queue_svc *svc)
{
    char err[256];
    redisContext *redis = queue_redis_connect(&svc->redis_address, svc->config->redis_timeout_ms, err, sizeof(err));
    if (redis == NULL) {
        rpc_log(RPC_LOG_WARN, "", "%s: the feed will retry (Leave still works, without its left message)", err);
        return;
    }
    redisFree(redis);
}

static enum tk_status start_parts(struct queue_svc *svc, const struct queue_config *config)
{
    const char *addresses[RPC_SHARDS_MAX];
    for (uint32_t i = 0; i < config->shard_count; i++)
        addresses[i] = config->shards[i];
    svc->router = rpc_router_create(addresses, config->shard_count, NULL);
    svc->loop = rpc_client_loop_start(2);
    struct svc_workers_config workers = {.threads = config->common.workers, .queue_max = config->common.queue_max};
    char err[512];
    if (svc_workers_start(&svc->workers, &workers, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "cannot start the workers: %s", err);
        return TK_ERR_UNAVAILABLE;
    }
    svc->left_redis = calloc(config->common.workers, sizeof(redisContext *));
    TK_ASSERT(svc->left_redis != NULL);
    probe_redis(svc);
    svc->catalog = queue_catalog_start(svc);
    svc->watch = queue_watch_start(svc);
    svc->feed = queue_feed_start(svc);
    rpc_metrics_add_writer(queue_metrics_write, svc);
    return TK_OK;
}

/* After the server stopped: the order keeps every completion's target alive. */
static void stop_parts(struct queue_svc *svc)
{
    queue_watch_stop(svc->watch); /* waits for its engine calls: before the loop stops */
    queue_feed_stop(svc->feed);
    queue_catalog_stop(svc->catalog);
    rpc_client_loop_stop(svc->loop);
    svc_workers_stop(svc->workers);
    for (uint32_t i = 0; svc->left_redis != NULL && i < svc->config->common.workers; i++)
        if (svc->left_redis[i] != NULL)
            redisFree(svc->left_redis[i]);
    free(svc->left_redis);
    rpc_router_destroy(svc->router);
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    static struct queue_config config; /* large (the shard list): not on the stack */
    int parsed = queue_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("queue-svc", config.common.log_level);
    if (config.check_only) {
        printf("queue-svc: configuration ok\n");
        return 0;
    }
    static struct queue_svc svc;
    svc.config = &config;
    bool parsed_url = queue_redis_parse_url(config.redis_url, &svc.redis_address);
    TK_ASSERT(parsed_url); /* checked with the settings */
    if (start_parts(&svc, &config) != TK_OK) {
        svc_workers_stop(svc.workers);
        rpc_client_loop_stop(svc.loop);
        rpc_router_destroy(svc.router);
        return 1;
    }
    struct svc_daemon daemon;
    if (svc_daemon_start(&daemon, "queue-svc", &config.common, queue_methods, queue_method_count, &svc,
                         "tiketi.v1.WaitingRoom") != TK_OK) {
        stop_parts(&svc);
        return 1;
    }
    atomic_store(&svc.server, daemon.server);
    rpc_log(RPC_LOG_INFO, "", "replica %s, %u seatcored shards, feed every %u ms, lease %u ms", config.replica_id,
            config.shard_count, config.feed_interval_ms, config.lease_ms);
    svc_daemon_run(&daemon, &config.common);
    stop_parts(&svc);
    svc_daemon_destroy(&daemon);
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
