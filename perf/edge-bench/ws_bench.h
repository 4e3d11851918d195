/* ws_bench.h — edge-bench-ws: many waiting-room WebSocket clients against one edge.
 *
 * One process per worker (this sandbox caps a process at 20,000 descriptors), each
 * an epoll loop over its share of the connections; the parent opens no socket of its
 * own. It forks the workers, reads the edge's RSS from /proc, picks one measurement
 * window on CLOCK_MONOTONIC (shared by every process) and adds the workers' figures.
 * Files: ws_conn.c (one connection: connect, upgrade, frames), ws_worker.c (the loop,
 * the ramp, the window), ws_main.c (options, workers, /proc, the report). */
#ifndef WS_BENCH_H
#define WS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_CONNECTIONS_MAX 1000000u
#define WS_WORKERS_MAX 64u
#define WS_SOURCES_MAX 250u  /* 127.0.0.2 .. 127.0.0.251 */
#define WS_WINDOW_S_MAX 64u  /* one bit per second of the window in a uint64_t */
#define WS_BUFFER_BYTES 512u /* the 101 head, or one small frame (positions are ~40 bytes) */
#define WS_REQUEST_BYTES_MAX 4096u
#define WS_TOKEN_BYTES_MAX 2048u
#define WS_HANDSHAKE_TIMEOUT_MS 30000u
#define WS_GAP_BUCKETS 6u  /* longest gap between positions: <=1.0, 1.2, 1.5, 2, 5 s, more */
#define WS_STATUS_CODES 8u /* refused upgrades by HTTP status (see ws_status_slot) */

enum ws_state { WS_CONNECTING = 1, WS_HANDSHAKE, WS_OPEN, WS_CLOSED };

/* One client. Kept small: 100,000 of these must fit next to the edge. */
struct ws_conn {
    int fd;
    uint32_t index;      /* global connection number: picks the token */
    uint8_t state;       /* enum ws_state */
    uint16_t sent;       /* bytes of the upgrade request written so far */
    uint16_t have;       /* bytes in buf */
    uint32_t skip;       /* payload bytes of an oversized frame still to discard */
    uint32_t started_ms; /* when connect() was called (for the handshake timeout) */
    uint32_t last_position_ms;
    uint32_t max_gap_ms;   /* longest gap between positions that ends inside the window */
    uint32_t positions;    /* position messages received inside the window */
    uint64_t seconds_seen; /* bit s: a position arrived in second s of the window */
    uint8_t buf[WS_BUFFER_BYTES];
};

/* What one worker measured; the parent adds them up. Plain integers, sent over a pipe. */
struct ws_result {
    uint64_t attempted, opened, connect_failed, handshake_timeouts, protocol_errors;
    uint64_t refused[WS_STATUS_CODES]; /* non-101 answers by status (ws_status_slot) */
    uint64_t closed_by_server, closed_codes_1000, closed_codes_1001, closed_codes_1008, closed_codes_other;
    uint64_t open_through_window; /* open for the whole window: the clients judged */
    uint64_t every_second;        /* ... of which got a position in every second */
    uint64_t client_seconds, client_seconds_with_position;
    uint64_t positions_in_window, other_messages, pings_answered;
    uint64_t gap_buckets[WS_GAP_BUCKETS];
    uint64_t min_positions, max_positions; /* per judged client, inside the window */
    uint64_t open_ms_sum;                  /* upgrade time (connect -> 101), summed */
};

struct ws_target {
    uint32_t ip_be; /* the edge's address, network order */
    uint16_t port;  /* host order */
    char host[64];  /* for the Host header */
    char event_id[32];
};

struct ws_plan {
    struct ws_target target;
    char **tokens; /* access tokens, one per user; connection i uses token i % token_count */
    uint32_t token_count;
    uint32_t connections; /* in all */
    uint32_t workers;
    uint32_t sources;     /* source addresses 127.0.0.2 .. 127.0.0.(1+sources) */
    uint32_t open_per_s;  /* the ramp, all workers together */
    uint32_t pending_max; /* upgrades in flight per worker */
};

/* ws_conn.c */
const char *ws_status_name(unsigned slot);
unsigned ws_status_slot(int status);
bool ws_conn_open(struct ws_conn *c, const struct ws_plan *plan, uint32_t now_ms, int epfd, uint32_t tag,
                  struct ws_result *r);
/* Handles readiness; returns false when the connection is finished (closed and counted). */
bool ws_conn_ready(struct ws_conn *c, const struct ws_plan *plan, uint32_t events, uint32_t now_ms,
                   struct ws_result *r);
void ws_conn_close(struct ws_conn *c);
/* The window the positions are counted in, [start, end) on the monotonic clock in ms. */
void ws_conn_set_window(uint32_t start_ms, uint32_t end_ms);

/* ws_worker.c: runs one worker's share (connections worker, worker+workers, ...). */
int ws_worker_run(const struct ws_plan *plan, uint32_t worker, int control_in, int report_out);
uint32_t ws_now_ms(void);

#endif
