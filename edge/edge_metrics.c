/* edge_metrics.c — the tiketi_edge_* metrics in Prometheus text format.
 *
 * Counters are relaxed atomics bumped where things happen; this writer only
 * reads them (rpc_metrics_write calls it after the per-method gRPC client
 * metrics, for GET /metrics). Routes with no requests yet are left out. */
#include <stdio.h>

#include "edge.h"

static uint64_t load(_Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static void counter(FILE *out, const char *name, const char *help, uint64_t value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)value);
}

static void write_requests(FILE *out, struct edge_metrics *m)
{
    fprintf(out, "# HELP tiketi_edge_http_requests_total HTTP requests by route and status class.\n"
                 "# TYPE tiketi_edge_http_requests_total counter\n");
    for (int route = 0; route < EDGE_ROUTE_COUNT; route++)
        for (int c = 0; c < 5; c++) {
            uint64_t n = load(&m->requests[route][c]);
            if (n > 0)
                fprintf(out, "tiketi_edge_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                        edge_route_name((enum edge_route)route), c + 1, (unsigned long long)n);
        }
    fprintf(out, "# HELP tiketi_edge_http_request_duration_seconds Time from the request's first byte to the "
                 "end of its response.\n# TYPE tiketi_edge_http_request_duration_seconds histogram\n");
    for (int route = 0; route < EDGE_ROUTE_COUNT; route++) {
        if (tk_histogram_count(&m->latency_ns[route]) == 0)
            continue;
        char labels[64];
        snprintf(labels, sizeof(labels), "route=\"%s\"", edge_route_name((enum edge_route)route));
        tk_histogram_write_prometheus(out, "tiketi_edge_http_request_duration_seconds", labels, &m->latency_ns[route]);
    }
}

static void write_websockets(FILE *out, struct edge_server *server)
{
    struct edge_metrics *m = &server->metrics;
    static const char *const types[EDGE_WS_TYPES] = {"position", "admitted", "seats", "other"};
    fprintf(out, "# HELP tiketi_edge_websockets Open waiting-room WebSockets.\n# TYPE tiketi_edge_websockets gauge\n"
                 "tiketi_edge_websockets %u\n", atomic_load(&server->websockets));
    counter(out, "tiketi_edge_ws_opened_total", "WebSockets opened.", load(&m->ws_opened));
    counter(out, "tiketi_edge_ws_refused_total", "WebSocket upgrades refused at the --ws-max cap.",
            load(&m->ws_refused));
    counter(out, "tiketi_edge_ws_slow_closed_total", "WebSockets closed as slow consumers (1008).",
            load(&m->ws_slow_closed));
    counter(out, "tiketi_edge_ws_pong_timeouts_total", "WebSockets closed for not answering pings.",
            load(&m->ws_pong_timeouts));
    fprintf(out, "# HELP tiketi_edge_ws_messages_total Messages pushed to WebSockets, by type.\n"
                 "# TYPE tiketi_edge_ws_messages_total counter\n");
    for (int t = 0; t < EDGE_WS_TYPES; t++)
        fprintf(out, "tiketi_edge_ws_messages_total{type=\"%s\"} %llu\n", types[t],
                (unsigned long long)load(&m->ws_sent[t]));
}

void edge_metrics_write(FILE *out, void *ctx)
{
    struct edge_server *server = ctx;
    struct edge_metrics *m = &server->metrics;
    write_requests(out, m);
    fprintf(out, "# HELP tiketi_edge_connections Open client connections.\n# TYPE tiketi_edge_connections gauge\n"
                 "tiketi_edge_connections %u\n", atomic_load(&server->connections));
    counter(out, "tiketi_edge_connections_accepted_total", "Connections accepted.", load(&m->connections_accepted));
    counter(out, "tiketi_edge_connections_refused_total", "Connections refused at --connections-max.",
            load(&m->connections_refused));
    fprintf(out, "# HELP tiketi_edge_rate_limited_total Requests refused with 429, by limit.\n"
                 "# TYPE tiketi_edge_rate_limited_total counter\n"
                 "tiketi_edge_rate_limited_total{limit=\"ip\"} %llu\n"
                 "tiketi_edge_rate_limited_total{limit=\"user\"} %llu\n",
            (unsigned long long)load(&m->rate_limited_ip), (unsigned long long)load(&m->rate_limited_user));
    counter(out, "tiketi_edge_jwt_refused_total", "Access tokens that did not verify.", load(&m->jwt_refused));
    write_websockets(out, server);
    counter(out, "tiketi_edge_feed_messages_total", "Queue feed messages received from Redis.",
            load(&m->feed_messages));
    counter(out, "tiketi_edge_feed_bad_messages_total", "Queue feed messages that could not be read.",
            load(&m->feed_bad_messages));
    counter(out, "tiketi_edge_feed_reconnects_total", "Connections made to Redis by the feed.",
            load(&m->feed_reconnects));
    counter(out, "tiketi_edge_seat_polls_total", "Availability polls of watched events.", load(&m->seat_polls));
    counter(out, "tiketi_edge_seat_poll_errors_total", "Availability polls that failed.", load(&m->seat_poll_errors));
    counter(out, "tiketi_edge_seat_deltas_total", "Seat deltas fanned out.", load(&m->seat_deltas));
    counter(out, "tiketi_edge_seatmap_cache_hits_total", "Seat maps served from the short cache.",
            load(&m->seatmap_cache_hits));
    counter(out, "tiketi_edge_seatmap_cache_misses_total", "Seat maps fetched from event-svc.",
            load(&m->seatmap_cache_misses));
    counter(out, "tiketi_edge_seatmap_not_modified_total", "Seat map requests answered 304.",
            load(&m->seatmap_not_modified));
    fprintf(out, "# HELP tiketi_edge_dependency_up 1 while the dependency answers its health check.\n"
                 "# TYPE tiketi_edge_dependency_up gauge\n");
    for (int d = 0; d < EDGE_DEP_COUNT; d++)
        fprintf(out, "tiketi_edge_dependency_up{dependency=\"%s\"} %d\n", edge_dependency_name((enum edge_dependency)d),
                atomic_load(&server->dependency_up[d]) ? 1 : 0);
}
