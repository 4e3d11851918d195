/* main.c — tiketi-edge: start-up, serving, graceful shutdown.
 *
 * Start: settings (flags, EDGE_* environment, TIKETI_HTTP_PORT), the JWT key
 * set, TLS when a certificate is given, gRPC channels to the services, the
 * loop threads (each binds the address with SO_REUSEPORT: a taken port fails
 * here, with its reason), then the feed, seats and readiness threads.
 * Stop (SIGTERM/SIGINT): /readyz turns 503, the loops stop accepting and close
 * WebSockets with 1001, requests in flight finish within --grace-ms, then the
 * feed and seats threads stop (they post to the loops, so before them), the
 * gRPC client loop delivers what is left, the loops exit, and so does the
 * process, with 0. */
#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edge.h"
#include "rpc_admin_http.h"
#include "rpc_log.h"
#include "rpc_metrics.h"
#include "rpc_server.h"
#include "svc_flags.h"
#include "tk_assert.h"

#define EVENT_REPLY_BYTES_MAX (32u << 20) /* a 200,000-seat map is ~7.5 MB of protobuf */

static bool argv_has(int argc, char **argv, const char *flag)
{
    size_t n = strlen(flag);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], flag, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
            return true;
    return false;
}

/* --listen, with the port replaced by --port, or by TIKETI_HTTP_PORT unless --listen was given. */
static bool resolve_listen(struct edge_server *server, const struct edge_config *config, int argc, char **argv)
{
    if (!rpc_parse_host_port(config->listen, &server->listen_addr, &server->listen_addr_len))
        return false;
    bool override = config->port != 0 && (argv_has(argc, argv, "--port") || !argv_has(argc, argv, "--listen"));
    if (override) {
        uint16_t port = htons((uint16_t)config->port);
        if (server->listen_addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&server->listen_addr)->sin_port = port;
        else
            ((struct sockaddr_in6 *)&server->listen_addr)->sin6_port = port;
    }
    return true;
}

static bool load_keys(struct edge_server *server, const struct edge_config *config)
{
    struct svc_jwt_keyset_config keys = {
        .keys = config->jwt_keys,
        .current_kid = NULL,
        .issuer = config->jwt_issuer,
        .audience = config->jwt_audience,
        .leeway_s = config->jwt_leeway_s,
    };
    char err[256];
    if (svc_jwt_keyset_load(&server->jwt, &keys, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tiketi-edge: --jwt-keys: %s\n", err);
        return false;
    }
    return true;
}

static bool setup_tls(struct edge_server *server, const struct edge_config *config)
{
    if (config->tls_cert[0] == '\0')
        return true;
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    TK_ASSERT(ssl != NULL);
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ssl, config->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl, config->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl) != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
        fprintf(stderr, "tiketi-edge: cannot use --tls-cert %s / --tls-key: %s\n", config->tls_cert, reason);
        SSL_CTX_free(ssl);
        return false;
    }
    h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols); /* h2, then http/1.1 */
    server->ssl = ssl;
    return true;
}

/* The UI folder when it has an index.html; otherwise the placeholder page. */
static void find_ui(struct edge_server *server, const struct edge_config *config)
{
    char resolved[PATH_MAX], index[PATH_MAX + 16];
    struct stat st;
    if (config->ui_dir[0] == '\0' || realpath(config->ui_dir, resolved) == NULL) {
        rpc_log(RPC_LOG_INFO, "", "no web UI folder (%s): / serves a placeholder page",
                config->ui_dir[0] ? config->ui_dir : "--ui-dir is empty");
        return;
    }
    snprintf(index, sizeof(index), "%s/index.html", resolved);
    if (stat(index, &st) != 0) {
        rpc_log(RPC_LOG_INFO, "", "%s has no index.html yet: / serves a placeholder page", resolved);
        return;
    }
    if (strlen(resolved) + 2 > sizeof(server->ui_dir)) {
        rpc_log(RPC_LOG_WARN, "", "the web UI path is too long: / serves a placeholder page");
        return;
    }
    memcpy(server->ui_dir, resolved, strlen(resolved));
    server->ui_dir[strlen(resolved)] = '/';
}

static void open_channels(struct edge_server *server, const struct edge_config *config)
{
    const char *addresses[EDGE_DEP_REDIS] = {config->auth_addr, config->event_addr, config->queue_addr,
                                             config->reservation_addr, config->payment_addr};
    for (int d = 0; d < EDGE_DEP_REDIS; d++) {
        if (addresses[d][0] == '\0')
            continue;
        struct rpc_channel_options options = {.max_message_bytes = d == EDGE_DEP_EVENT ? EVENT_REPLY_BYTES_MAX : 0};
        server->channels[d] = rpc_channel_open(addresses[d], &options);
    }
    atomic_store(&server->dependency_up[EDGE_DEP_REDIS], config->redis_url[0] == '\0');
    if (config->seatcored_shards[0] != '\0') {
        static char shard_text[RPC_SHARDS_MAX][EDGE_ADDRESS_BYTES];
        int count = svc_split_list(config->seatcored_shards, &shard_text[0][0], EDGE_ADDRESS_BYTES, RPC_SHARDS_MAX);
        const char *shards[RPC_SHARDS_MAX];
        for (int i = 0; i < count; i++)
            shards[i] = shard_text[i];
        if (count > 0)
            server->shards = rpc_router_create(shards, (uint32_t)count, NULL);
    }
}

static void close_channels(struct edge_server *server)
{
    for (int d = 0; d < EDGE_DEP_REDIS; d++)
        rpc_channel_close(server->channels[d]);
    rpc_router_destroy(server->shards);
}

static void wait_for_stop_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int signal_number = 0;
    while (sigwait(&set, &signal_number) != 0) {
    }
    rpc_log(RPC_LOG_INFO, "", "%s: shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void shut_down(struct edge_server *server)
{
    atomic_store(&server->stopping, true);
    edge_loops_drain(server);
    uint64_t give_up = edge_monotonic_ms() + server->config->grace_ms;
    while (edge_loops_busy(server) > 0 && edge_monotonic_ms() < give_up)
        usleep(20 * 1000);
    if (edge_loops_busy(server) > 0)
        rpc_log(RPC_LOG_WARN, "", "grace period over with %u calls or WebSockets still open", edge_loops_busy(server));
    edge_seats_stop(server->seats);
    edge_feed_stop(server->feed);
    edge_readiness_stop();
    rpc_client_loop_stop(server->rpc); /* completions still reach the loops */
    usleep(100 * 1000);                /* the last responses leave the sockets */
    edge_loops_stop(server);
}

int main(int argc, char **argv)
{
    rpc_signals_block(); /* every thread created from here on leaves SIGTERM/SIGINT to sigwait */
    static struct edge_config config;
    int parsed = edge_config_parse(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("tiketi-edge", config.log_level);
    static struct edge_server server;
    server.config = &config;
    if (!resolve_listen(&server, &config, argc, argv)) {
        fprintf(stderr, "tiketi-edge: --listen must be host:port\n");
        return 2;
    }
    if (!load_keys(&server, &config) || !setup_tls(&server, &config))
        return 2;
    find_ui(&server, &config);
    if (config.check_only) {
        printf("tiketi-edge: configuration ok\n");
        return 0;
    }
    open_channels(&server, &config);
    server.rate_ip = edge_ratelimit_create(config.rate_keys_max, config.rate_ip_per_s, config.rate_ip_burst, 0);
    server.rate_user = edge_ratelimit_create(config.rate_keys_max, config.rate_user_per_s, config.rate_user_burst, 0);
    server.seatmaps = edge_seatmap_cache_create();
    rpc_metrics_add_writer(edge_metrics_write, &server);
    server.rpc = rpc_client_loop_start(config.rpc_threads);
    edge_http_register(&server);
    char err[256];
    if (edge_loops_start(&server, err, sizeof(err)) != TK_OK) {
        rpc_log(RPC_LOG_ERROR, "", "%s on %s", err, config.listen);
        return 1;
    }
    server.feed = edge_feed_start(&server);
    server.seats = edge_seats_start(&server);
    edge_readiness_start(&server);
    char host[64] = "?";
    int port = 0;
    if (server.listen_addr.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&server.listen_addr)->sin_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&server.listen_addr)->sin_port);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&server.listen_addr)->sin6_addr, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&server.listen_addr)->sin6_port);
    }
    rpc_log(RPC_LOG_INFO, "", "listening on %s://%s:%d with %u loops (ui: %s, feed: %s, seat deltas from %s)",
            server.ssl ? "https" : "http", host, port, server.loop_count,
            server.ui_dir[0] ? server.ui_dir : "placeholder",
            config.redis_url[0] ? config.redis_url : "off", server.shards ? "seatcored" : "event-svc");
    wait_for_stop_signal();
    shut_down(&server);
    close_channels(&server);
    edge_seatmap_cache_destroy(server.seatmaps);
    edge_ratelimit_destroy(server.rate_ip);
    edge_ratelimit_destroy(server.rate_user);
    svc_jwt_keyset_wipe(&server.jwt);
    if (server.ssl != NULL)
        SSL_CTX_free(server.ssl);
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
