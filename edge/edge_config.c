/* edge_config.c — the settings table (edge_config.h). */
#include "edge_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "edge_limits.h"
#include "rpc_admin_http.h"
#include "svc_flags.h"
#include "tk_assert.h"

static const char summary[] =
    "The TIKETI edge: the HTTP/1.1 + HTTP/2 + WebSocket server clients talk to. It serves the public API\n"
    "(API.md: REST + JSON, the waiting room over WebSocket), /healthz, /readyz, /metrics, /openapi.json\n"
    "and the web UI, verifies access tokens itself, and calls auth-svc, event-svc, queue-svc and\n"
    "reservation-svc over gRPC without blocking its event loops (docs/edge.md).";

static void defaults(struct edge_config *c)
{
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
    c->threads = 2;
    c->rpc_threads = 2;
    snprintf(c->auth_addr, sizeof(c->auth_addr), "127.0.0.1:3010");
    snprintf(c->event_addr, sizeof(c->event_addr), "127.0.0.1:3011");
    snprintf(c->queue_addr, sizeof(c->queue_addr), "127.0.0.1:3012");
    snprintf(c->reservation_addr, sizeof(c->reservation_addr), "127.0.0.1:3013");
    snprintf(c->payment_addr, sizeof(c->payment_addr), "127.0.0.1:3014");
    snprintf(c->redis_url, sizeof(c->redis_url), "redis://127.0.0.1:6379");
    snprintf(c->jwt_issuer, sizeof(c->jwt_issuer), "tiketi-auth");
    snprintf(c->jwt_audience, sizeof(c->jwt_audience), "tiketi");
    c->jwt_leeway_s = 30;
#ifdef EDGE_UI_DIR_DEFAULT
    snprintf(c->ui_dir, sizeof(c->ui_dir), "%s", EDGE_UI_DIR_DEFAULT);
#endif
    c->body_max_bytes = 64u * 1024u;
    c->header_timeout_ms = 10000;
    c->idle_timeout_ms = 60000;
    c->connections_max = 20000;
    c->rate_ip_per_s = 100, c->rate_ip_burst = 200;
    c->rate_user_per_s = 20, c->rate_user_burst = 40;
    c->rate_keys_max = 65536;
    c->ws_max = 10000;
    c->ws_send_buffer_bytes = 256u * 1024u;
    c->ws_socket_buffer_bytes = 64u * 1024u;
    c->ws_ping_interval_ms = 15000;
    c->ws_pong_timeout_ms = 30000;
    c->ws_position_every_ms = 1000;
    c->ws_status_every_ms = 20000;
    c->seat_poll_ms = 1000;
    c->seatmap_cache_ms = 250;
    c->rpc_timeout_ms = 5000;
    c->pay_timeout_ms = 30000;
    c->grace_ms = 10000;
    c->access_log = true;
    c->log_level = RPC_LOG_INFO;
}

static bool address_ok(const char *text)
{
    struct sockaddr_storage addr;
    socklen_t len;
    return rpc_parse_host_port(text, &addr, &len);
}

#define RPC_SHARDS_MAX_TEXT (256u * EDGE_ADDRESS_BYTES) /* rpc_client.h's RPC_SHARDS_MAX entries */

static int check(struct edge_config *c)
{
    if (!address_ok(c->listen)) {
        fprintf(stderr, "tiketi-edge: --listen must be host:port (IPv4 or [IPv6]), not '%s'\n", c->listen);
        return -1;
    }
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
        fprintf(stderr, "tiketi-edge: --tls-cert and --tls-key go together (both or neither)\n");
        return -1;
    }
    if (c->redis_url[0] != '\0' && !edge_redis_url_valid(c->redis_url)) {
        fprintf(stderr, "tiketi-edge: --redis-url must look like redis://host:port[/db] (or be empty)\n");
        return -1;
    }
    if (c->ws_pong_timeout_ms <= c->ws_ping_interval_ms / 2) {
        fprintf(stderr, "tiketi-edge: --ws-pong-timeout-ms (%u) must exceed half of --ws-ping-interval-ms (%u)\n",
                c->ws_pong_timeout_ms, c->ws_ping_interval_ms);
        return -1;
    }
    if ((c->rate_ip_per_s > 0 && c->rate_ip_burst == 0) || (c->rate_user_per_s > 0 && c->rate_user_burst == 0)) {
        fprintf(stderr, "tiketi-edge: a rate limit needs a burst of at least 1\n");
        return -1;
    }
    char shards[RPC_SHARDS_MAX_TEXT];
    if (c->seatcored_shards[0] != '\0' &&
        svc_split_list(c->seatcored_shards, shards, EDGE_ADDRESS_BYTES, sizeof(shards) / EDGE_ADDRESS_BYTES) <= 0) {
        fprintf(stderr, "tiketi-edge: --seatcored-shards must be a comma-separated list of host:port, "
                        "in shard order\n");
        return -1;
    }
    const char *needed[] = {c->auth_addr, c->event_addr, c->queue_addr};
    for (size_t i = 0; i < 3; i++)
        if (needed[i][0] == '\0') {
            fprintf(stderr, "tiketi-edge: --auth-addr, --event-addr and --queue-addr are required\n");
            return -1;
        }
    return 0;
}

#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)

int edge_config_parse(struct edge_config *c, int argc, char **argv)
{
    TK_ASSERT(c != NULL && argc >= 1);
    memset(c, 0, sizeof(*c));
    defaults(c);
    const struct svc_flag flags[] = {
        {"listen", "EDGE_LISTEN", "HTTP address, host:port (default 127.0.0.1:8080)", STR(listen)},
        {"port", "TIKETI_HTTP_PORT", "replaces the port of --listen (the local stack's contract)",
         U32(port, 0, 65535)},
        {"threads", "EDGE_THREADS", "event loops, each with its own SO_REUSEPORT listener (default 2)",
         U32(threads, 1, EDGE_THREADS_MAX)},
        {"rpc-threads", "EDGE_RPC_THREADS", "threads completing gRPC calls (default 2)",
         U32(rpc_threads, 1, EDGE_RPC_THREADS_MAX)},
        {"auth-addr", "EDGE_AUTH_ADDR", "auth-svc gRPC address (default 127.0.0.1:3010)", STR(auth_addr)},
        {"event-addr", "EDGE_EVENT_ADDR", "event-svc gRPC address (default 127.0.0.1:3011)", STR(event_addr)},
        {"queue-addr", "EDGE_QUEUE_ADDR", "queue-svc gRPC address (default 127.0.0.1:3012)", STR(queue_addr)},
        {"reservation-addr", "EDGE_RESERVATION_ADDR",
         "reservation-svc gRPC address (default 127.0.0.1:3013; empty: its routes answer 503)",
         STR(reservation_addr)},
        {"payment-addr", "EDGE_PAYMENT_ADDR",
         "payment-svc gRPC address, checked by /readyz only (default 127.0.0.1:3014; empty: not checked)",
         STR(payment_addr)},
        {"seatcored-shards", "EDGE_SEATCORED_SHARDS",
         "seatcored addresses in shard order: seat deltas from GetAvailability (empty: from event-svc)",
         STR(seatcored_shards)},
        {"redis-url", "EDGE_REDIS_URL", "Redis of the queue feed, redis://host:port[/db] (empty: no feed)",
         STR(redis_url)},
        {"jwt-keys", "EDGE_JWT_KEYS", "access-token keys, kid=/path or kid=env:VAR, comma-separated",
         STR(jwt_keys), .required = true},
        {"jwt-issuer", "EDGE_JWT_ISSUER", "expected iss (default tiketi-auth)", STR(jwt_issuer)},
        {"jwt-audience", "EDGE_JWT_AUDIENCE", "expected aud (default tiketi)", STR(jwt_audience)},
        {"jwt-leeway-s", "EDGE_JWT_LEEWAY_S", "clock skew allowed on exp/nbf/iat (default 30)",
         U32(jwt_leeway_s, 0, 300)},
        {"tls-cert", "EDGE_TLS_CERT", "PEM certificate chain: serve HTTPS (with HTTP/2) instead of HTTP",
         STR(tls_cert)},
        {"tls-key", "EDGE_TLS_KEY", "PEM private key of --tls-cert", STR(tls_key), .secret = true},
        {"ui-dir", "EDGE_UI_DIR", "static web UI served at / (a placeholder page when empty or missing)",
         STR(ui_dir)},
        {"body-max-bytes", "EDGE_BODY_MAX_BYTES", "largest request body, else 413 (default 65536)",
         U32(body_max_bytes, EDGE_BODY_BYTES_MIN, EDGE_BODY_BYTES_MAX)},
        {"header-timeout-ms", "EDGE_HEADER_TIMEOUT_MS",
         "a request (head and body) must arrive within this; also HTTP/1.1 keep-alive idle (default 10000)",
         U32(header_timeout_ms, 100, 600000)},
        {"idle-timeout-ms", "EDGE_IDLE_TIMEOUT_MS", "idle HTTP/2 connections and TLS handshakes (default 60000)",
         U32(idle_timeout_ms, 100, 3600000)},
        {"connections-max", "EDGE_CONNECTIONS_MAX", "open connections, WebSockets included (default 20000)",
         U32(connections_max, 1, EDGE_CONNECTIONS_MAX_MAX)},
        {"rate-ip-per-s", "EDGE_RATE_IP_PER_S", "API requests per second per client address, 0: off (default 100)",
         U32(rate_ip_per_s, 0, 1000000)},
        {"rate-ip-burst", "EDGE_RATE_IP_BURST", "burst per client address (default 200)",
         U32(rate_ip_burst, 0, 1000000)},
        {"rate-user-per-s", "EDGE_RATE_USER_PER_S", "API requests per second per user, 0: off (default 20)",
         U32(rate_user_per_s, 0, 1000000)},
        {"rate-user-burst", "EDGE_RATE_USER_BURST", "burst per user (default 40)", U32(rate_user_burst, 0, 1000000)},
        {"rate-keys-max", "EDGE_RATE_KEYS_MAX", "buckets kept per limit (default 65536)",
         U32(rate_keys_max, EDGE_RATE_STRIPES, EDGE_RATE_KEYS_MAX_MAX)},
        {"ws-max", "EDGE_WS_MAX", "open waiting-room WebSockets (default 10000)",
         U32(ws_max, 1, EDGE_WEBSOCKETS_MAX_MAX)},
        {"ws-send-buffer-bytes", "EDGE_WS_SEND_BUFFER_BYTES",
         "unsent bytes per WebSocket before it is closed as a slow consumer (default 262144)",
         U32(ws_send_buffer_bytes, EDGE_WS_SEND_BUFFER_BYTES_MIN, EDGE_WS_SEND_BUFFER_BYTES_MAX)},
        {"ws-socket-buffer-bytes", "EDGE_WS_SOCKET_BUFFER_BYTES",
         "kernel send buffer of a WebSocket (SO_SNDBUF), 0: the kernel's autotuning (default 65536)",
         U32(ws_socket_buffer_bytes, 0, 16u << 20)},
        {"ws-ping-interval-ms", "EDGE_WS_PING_INTERVAL_MS", "WebSocket ping period (default 15000)",
         U32(ws_ping_interval_ms, 100, 600000)},
        {"ws-pong-timeout-ms", "EDGE_WS_PONG_TIMEOUT_MS", "close a WebSocket silent this long (default 30000)",
         U32(ws_pong_timeout_ms, 100, 600000)},
        {"ws-position-every-ms", "EDGE_WS_POSITION_EVERY_MS",
         "longest gap between two position messages to a waiting client (default 1000)",
         U32(ws_position_every_ms, 300, 60000)},
        {"ws-status-every-ms", "EDGE_WS_STATUS_EVERY_MS",
         "queue-svc Status per waiting socket (heartbeat and a check of the feed) (default 20000)",
         U32(ws_status_every_ms, 1000, 600000)},
        {"seat-poll-ms", "EDGE_SEAT_POLL_MS", "availability polled once per watched event this often (default 1000)",
         U32(seat_poll_ms, 100, 60000)},
        {"seatmap-cache-ms", "EDGE_SEATMAP_CACHE_MS", "a fetched seat map serves others this long, 0: off "
                                                      "(default 250)", U32(seatmap_cache_ms, 0, 60000)},
        {"rpc-timeout-ms", "EDGE_RPC_TIMEOUT_MS", "deadline of a gRPC call (default 5000)",
         U32(rpc_timeout_ms, 50, 120000)},
        {"pay-timeout-ms", "EDGE_PAY_TIMEOUT_MS", "deadline of a payment call (default 30000)",
         U32(pay_timeout_ms, 100, 300000)},
        {"grace-ms", "EDGE_GRACE_MS", "on SIGTERM, requests in flight finish within this (default 10000)",
         U32(grace_ms, 0, 600000)},
        {"access-log", "EDGE_ACCESS_LOG", "one JSON line per request on stderr (default true)",
         .type = SVC_FLAG_BOOL, .target = &c->access_log},
        {"log-level", "EDGE_LOG_LEVEL", "debug, info, warn or error (default info)", .type = SVC_FLAG_LOG_LEVEL,
         .target = &c->log_level},
    };
    size_t count = sizeof(flags) / sizeof(flags[0]);
    _Static_assert(sizeof(flags) / sizeof(flags[0]) <= SVC_FLAGS_MAX, "the flag table fits svc_flags");
    int parsed = svc_flags_parse("tiketi-edge", summary, flags, count, argc, argv, &c->check_only);
    if (parsed != 0)
        return parsed;
    return check(c);
}
