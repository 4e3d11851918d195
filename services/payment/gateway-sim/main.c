/* main.c — gateway-sim: the card payment gateway simulator's daemon.
 *
 * Start: settings (flags, env GATEWAY_SIM_*), the store, the listener, an
 * acceptor thread that hands each connection to its own detached thread (at most
 * --connections-max at once; past that a connection gets 503 and is closed).
 * Stop (SIGTERM/SIGINT): stop accepting, let the connections finish their
 * current request within --grace-ms (hung and slow requests notice and end),
 * then exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rpc_admin_http.h"
#include "rpc_server.h"
#include "sim.h"
#include "svc_flags.h"
#include "tk_assert.h"

#define CONNECTION_STACK_BYTES (1u << 20) /* jansson recurses on nested JSON */

static const char summary[] =
    "gateway-sim: a card payment gateway simulator for development and tests. Speaks the gateway\n"
    "HTTP API (docs/services/payment.md) with test card tokens (tok_approve, tok_decline, tok_slow,\n"
    "tok_error), an idempotency table, a ledger (GET /v1/_sim/ledger) and fault knobs set here\n"
    "or at run time (POST /v1/_sim/faults {latency_ms, error_rate, hang, drop}).";

static int parse_config(struct sim_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:3099");
    c->connections_max = 256;
    c->body_bytes_max = 64u * 1024u;
    c->read_timeout_ms = 5000;
    c->hang_max_ms = 60000;
    c->slow_ms = 5000;
    c->intents_max = 10000;
    c->idempotency_keys_max = 40000;
    snprintf(c->error_rate, sizeof(c->error_rate), "0");
    snprintf(c->drop_rate, sizeof(c->drop_rate), "0");
    c->grace_ms = 3000;
    c->log_level = RPC_LOG_INFO;
#define STR(field) .type = SVC_FLAG_STRING, .target = c->field, .target_len = sizeof(c->field)
#define U32(field, lo, hi) .type = SVC_FLAG_U32, .target = &c->field, .min = (lo), .max = (hi)
    const struct svc_flag flags[] = {
        {"listen", "GATEWAY_SIM_LISTEN", "HTTP address to listen on (default 127.0.0.1:3099)", STR(listen)},
        {"latency-ms", "GATEWAY_SIM_LATENCY_MS", "fault: added latency per gateway request (default 0)",
         U32(latency_ms, 0, 600000)},
        {"error-rate", "GATEWAY_SIM_ERROR_RATE", "fault: share of gateway requests answered 500, 0..1 (default 0)",
         STR(error_rate)},
        {"drop", "GATEWAY_SIM_DROP", "fault: share of requests executed, then dropped unanswered, 0..1",
         STR(drop_rate)},
        {"hang", "GATEWAY_SIM_HANG", "fault: hold every gateway request unanswered (default off)",
         .type = SVC_FLAG_BOOL, .target = &c->hang},
        {"slow-ms", "GATEWAY_SIM_SLOW_MS", "how long tok_slow takes to approve (default 5000)",
         U32(slow_ms, 0, 600000)},
        {"hang-max-ms", "GATEWAY_SIM_HANG_MAX_MS", "longest a hung request is held (default 60000)",
         U32(hang_max_ms, 1, 3600000)},
        {"connections-max", "GATEWAY_SIM_CONNECTIONS_MAX", "concurrent connections (default 256)",
         U32(connections_max, 1, 4096)},
        {"body-bytes-max", "GATEWAY_SIM_BODY_BYTES_MAX", "largest request body (default 65536)",
         U32(body_bytes_max, 256, 16u << 20)},
        {"read-timeout-ms", "GATEWAY_SIM_READ_TIMEOUT_MS", "a request must arrive within this; idle keep-alive too",
         U32(read_timeout_ms, 100, 600000)},
        {"intents-max", "GATEWAY_SIM_INTENTS_MAX", "payment intents kept (default 10000)",
         U32(intents_max, 1, 10000000)},
        {"idempotency-keys", "GATEWAY_SIM_IDEMPOTENCY_KEYS", "idempotency keys kept (default 40000)",
         U32(idempotency_keys_max, 1, 10000000)},
        {"seed", "GATEWAY_SIM_SEED", "random seed for ids and faults (default: from the clock)", U32(seed, 0, UINT32_MAX)},
        {"grace-ms", "GATEWAY_SIM_GRACE_MS", "shutdown grace for requests in flight (default 3000)",
         U32(grace_ms, 0, 600000)},
        {"log-level", "GATEWAY_SIM_LOG_LEVEL", "debug, info, warn or error (default info)",
         .type = SVC_FLAG_LOG_LEVEL, .target = &c->log_level},
    };
#undef STR
#undef U32
    int rc = svc_flags_parse("gateway-sim", summary, flags, sizeof(flags) / sizeof(flags[0]), argc, argv,
                             &c->check_only);
    if (rc != 0)
        return rc;
    uint32_t ppm;
    if (!sim_rate_parse(c->error_rate, &ppm) || !sim_rate_parse(c->drop_rate, &ppm)) {
        fprintf(stderr, "gateway-sim: --error-rate and --drop take a number from 0 to 1\n");
        return -1;
    }
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (!rpc_parse_host_port(c->listen, &addr, &addr_len)) {
        fprintf(stderr, "gateway-sim: bad --listen '%s' (want host:port)\n", c->listen);
        return -1;
    }
    return 0;
}

struct connection {
    struct sim *sim;
    int fd;
};

static void *connection_main(void *arg)
{
    struct connection *conn = arg;
    struct sim *sim = conn->sim;
    sim_http_serve(sim, conn->fd);
    free(conn);
    atomic_fetch_sub(&sim->connections_open, 1);
    return NULL;
}

static void refuse(struct sim *sim, int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                               "Content-Length: 77\r\nConnection: close\r\n\r\n"
                               "{\"error\":{\"type\":\"api_error\",\"code\":\"busy\",\"message\":\"too many connections\"}}";
    _Static_assert(sizeof("{\"error\":{\"type\":\"api_error\",\"code\":\"busy\",\"message\":\"too many connections\"}}") -
                           1 == 77,
                   "Content-Length matches the body");
    atomic_fetch_add(&sim->counters.connections_refused, 1);
    (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

static void start_connection(struct sim *sim, int fd, pthread_attr_t *attr)
{
    if (atomic_fetch_add(&sim->connections_open, 1) >= sim->config->connections_max) {
        atomic_fetch_sub(&sim->connections_open, 1);
        refuse(sim, fd);
        return;
    }
    atomic_fetch_add(&sim->counters.connections, 1);
    struct connection *conn = malloc(sizeof(*conn));
    TK_ASSERT(conn != NULL);
    *conn = (struct connection){.sim = sim, .fd = fd};
    pthread_t thread;
    if (pthread_create(&thread, attr, connection_main, conn) != 0) {
        rpc_log(RPC_LOG_WARN, "", "cannot start a connection thread: %s", strerror(errno));
        free(conn);
        atomic_fetch_sub(&sim->connections_open, 1);
        refuse(sim, fd);
    }
}

struct acceptor {
    struct sim *sim;
    int listen_fd;
    pthread_t thread;
};

static void *acceptor_main(void *arg)
{
    struct acceptor *a = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, CONNECTION_STACK_BYTES);
    while (!atomic_load(&a->sim->stopping)) {
        struct pollfd p = {.fd = a->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
                nanosleep(&pause, NULL); /* out of descriptors: let connections finish */
            }
            continue;
        }
        start_connection(a->sim, fd, &attr);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

static int open_listener(const char *listen_address, int *port)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    TK_ASSERT(rpc_parse_host_port(listen_address, &addr, &addr_len)); /* checked with the flags */
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, 128) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &bound_len);
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

static void wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig;
    while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    rpc_log(RPC_LOG_INFO, "", "received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void init_faults(struct sim *sim, const struct sim_config *c)
{
    uint32_t error_ppm = 0, drop_ppm = 0;
    TK_ASSERT(sim_rate_parse(c->error_rate, &error_ppm) && sim_rate_parse(c->drop_rate, &drop_ppm));
    atomic_store(&sim->faults.latency_ms, c->latency_ms);
    atomic_store(&sim->faults.error_ppm, error_ppm);
    atomic_store(&sim->faults.drop_ppm, drop_ppm);
    atomic_store(&sim->faults.hang, c->hang);
}

int main(int argc, char **argv)
{
    rpc_signals_block();
    static struct sim_config config;
    int parsed = parse_config(&config, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    rpc_log_init("gateway-sim", config.log_level);
    if (config.check_only) {
        printf("gateway-sim: configuration ok\n");
        return 0;
    }
    uint64_t seed = config.seed ? config.seed : (uint64_t)sim_now_ms() ^ ((uint64_t)getpid() << 32);
    static struct sim sim; /* static: detached connection threads may outlive main's frame */
    sim = (struct sim){.config = &config};
    sim.store = sim_store_create(config.intents_max, config.idempotency_keys_max, seed);
    init_faults(&sim, &config);
    int port = 0;
    struct acceptor acceptor = {.sim = &sim, .listen_fd = open_listener(config.listen, &port)};
    if (acceptor.listen_fd < 0) {
        rpc_log(RPC_LOG_ERROR, "", "cannot listen on %s: %s", config.listen, strerror(errno));
        sim_store_destroy(sim.store);
        return 1;
    }
    pthread_create(&acceptor.thread, NULL, acceptor_main, &acceptor);
    rpc_log(RPC_LOG_INFO, "", "gateway-sim listening on %s (port %d); faults: latency_ms=%u error_rate=%s drop=%s hang=%d",
            config.listen, port, config.latency_ms, config.error_rate, config.drop_rate, (int)config.hang);
    wait_for_signal();
    atomic_store(&sim.stopping, true);
    pthread_join(acceptor.thread, NULL);
    close(acceptor.listen_fd);
    int64_t until = sim_monotonic_ms() + config.grace_ms;
    while (atomic_load(&sim.connections_open) > 0 && sim_monotonic_ms() < until) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        nanosleep(&pause, NULL);
    }
    uint32_t left = atomic_load(&sim.connections_open);
    if (left > 0) {
        /* Detached threads still reading a slow client: exit without freeing what they use. */
        rpc_log(RPC_LOG_WARN, "", "stopped with %u connections still open", left);
        return 0;
    }
    sim_store_destroy(sim.store);
    rpc_log(RPC_LOG_INFO, "", "stopped");
    return 0;
}
