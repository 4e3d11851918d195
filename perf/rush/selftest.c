/* selftest.c — rush-selftest: the load generator's own tests, without the stack.
 *
 * Pure parts first (HDR histogram, HTTP response parser fed byte by byte,
 * WebSocket framing and the RFC 6455 handshake sample, scenario files,
 * fairness figures), then the client loop against rush-testserver (started
 * here from beside this binary): keep-alive reuse across the server's idle
 * timeout, Connection: close, chunked and large bodies, slow answers, problem
 * codes, WebSocket messages (fragmented, with pings) and a refused upgrade.
 * Ends with "N passed, M failed" like the project's other suites.
 *
 *   rush-selftest [--testserver PATH] */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rush.h"
#include "tk_assert.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            passed++;                                                                                                  \
        } else {                                                                                                       \
            failed++;                                                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)

/* ---- pure parts ---- */

static void test_hdr(void)
{
    void *memory = malloc(hdr_bytes(8));
    struct hdr_histogram *h = hdr_init(memory, 8);
    for (uint64_t v = 1; v <= 100000; v++)
        hdr_record(h, v);
    uint64_t p50 = hdr_quantile(h, 0.5), p99 = hdr_quantile(h, 0.99);
    CHECK(fabs((double)p50 - 50000.0) / 50000.0 < 0.01, "p50 %llu", (unsigned long long)p50);
    CHECK(fabs((double)p99 - 99000.0) / 99000.0 < 0.01, "p99 %llu", (unsigned long long)p99);
    CHECK(hdr_quantile(h, 1.0) == 100000 && h->min == 1 && h->count == 100000, "max/min/count");
    for (uint32_t i = 0; i < h->bucket_count; i++) {
        uint64_t lo = hdr_bucket_lowest(8, i), hi = hdr_bucket_highest(8, i);
        if (hdr_index(8, lo) != i || hdr_index(8, hi) != i) {
            CHECK(false, "bucket %u [%llu, %llu] does not map back", i, (unsigned long long)lo,
                  (unsigned long long)hi);
            break;
        }
    }
    void *memory2 = malloc(hdr_bytes(8));
    struct hdr_histogram *g = hdr_init(memory2, 8);
    hdr_record(g, 5000000);
    hdr_merge(h, g);
    CHECK(h->count == 100001 && h->max == 5000000, "merge");
    hdr_record(g, UINT64_C(1) << 50);
    CHECK(g->clamped == 1, "clamped");
    free(memory);
    free(memory2);
}

static enum http_parse feed_bytewise(struct http_response *r, char *buf, size_t len, bool eof)
{
    /* the bytes arrive one at a time; the parser sees a growing prefix */
    http_response_reset(r);
    enum http_parse p = HTTP_PARSE_MORE;
    for (size_t i = 1; i <= len && p == HTTP_PARSE_MORE; i++)
        p = http_response_parse(r, buf, i, eof && i == len, 1u << 20);
    return p;
}

static void test_http(void)
{
    struct http_response r;
    char a[] = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
    CHECK(feed_bytewise(&r, a, sizeof(a) - 1, false) == HTTP_PARSE_DONE && r.status == 201 && r.body_len == 5 &&
              memcmp(r.body, "hello", 5) == 0 && r.consumed == sizeof(a) - 1 && !r.close,
          "content-length");
    char b[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1;ext\r\nd\r\n0\r\n\r\n";
    CHECK(feed_bytewise(&r, b, sizeof(b) - 1, false) == HTTP_PARSE_DONE && r.body_len == 4 &&
              memcmp(r.body, "abcd", 4) == 0 && r.consumed == sizeof(b) - 1,
          "chunked: %d %llu", (int)r.status, (unsigned long long)r.body_len);
    char c[] = "HTTP/1.0 200 OK\r\n\r\nuntil close";
    CHECK(feed_bytewise(&r, c, sizeof(c) - 1, true) == HTTP_PARSE_DONE && r.body_len == 11 && r.close,
          "read until close");
    char d[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    CHECK(feed_bytewise(&r, d, sizeof(d) - 1, false) == HTTP_PARSE_DONE && r.body_len == 0 && r.close, "204 close");
    char e[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: abc=\r\n\r\n\x81\x02hi";
    CHECK(feed_bytewise(&r, e, sizeof(e) - 1 - 4, false) == HTTP_PARSE_DONE && r.status == 101 && r.upgrade &&
              strcmp(r.websocket_accept, "abc=") == 0,
          "upgrade");
    char f[] = "HTTTP/1.1 200 OK\r\n\r\n";
    http_response_reset(&r);
    CHECK(http_response_parse(&r, f, sizeof(f) - 1, false, 100) == HTTP_PARSE_ERROR, "bad status line");
    char g[] = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
    http_response_reset(&r);
    CHECK(http_response_parse(&r, g, sizeof(g) - 1, false, 100) == HTTP_PARSE_ERROR, "body over the bound");
    char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
    http_response_reset(&r);
    CHECK(http_response_parse(&r, h, sizeof(h) - 1, true, 100) == HTTP_PARSE_ERROR, "closed inside the body");
    char *huge = malloc(RUSH_HEAD_BYTES_MAX + 10);
    memset(huge, 'a', RUSH_HEAD_BYTES_MAX + 10);
    memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 20);
    http_response_reset(&r);
    CHECK(http_response_parse(&r, huge, RUSH_HEAD_BYTES_MAX + 10, false, 100) == HTTP_PARSE_ERROR, "head too large");
    free(huge);
    char code[RUSH_CODE_BYTES];
    const char problem[] = "{\"type\":\"t\",\"status\":409,\"code\":\"seat_unavailable\",\"unavailable\":[\"4\"]}";
    http_problem_code(problem, sizeof(problem) - 1, code, sizeof(code));
    CHECK(strcmp(code, "seat_unavailable") == 0, "problem code '%s'", code);
    http_problem_code("{}", 2, code, sizeof(code));
    CHECK(code[0] == '\0', "no code");
}

static void test_ws(void)
{
    char accept[29];
    ws_expected_accept("dGhlIHNhbXBsZSBub25jZQ==", accept); /* RFC 6455 section 1.3 */
    CHECK(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0, "accept %s", accept);
    uint8_t frame[70000];
    struct ws_frame f;
    const uint8_t small[] = {0x81, 0x02, 'h', 'i'};
    CHECK(ws_frame_parse(small, 3, 1000, &f) == WS_PARSE_MORE, "short");
    CHECK(ws_frame_parse(small, 4, 1000, &f) == WS_PARSE_FRAME && f.fin && f.opcode == 1 && f.payload_len == 2 &&
              f.frame_len == 4,
          "small");
    const uint8_t masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h', 'i'};
    CHECK(ws_frame_parse(masked, sizeof(masked), 1000, &f) == WS_PARSE_ERROR, "masked server frame");
    const uint8_t long_ping[] = {0x89, 126, 0, 200};
    CHECK(ws_frame_parse(long_ping, sizeof(long_ping), 1000, &f) == WS_PARSE_ERROR, "control > 125");
    frame[0] = 0x82;
    frame[1] = 126;
    frame[2] = 0x01;
    frame[3] = 0x00;
    CHECK(ws_frame_parse(frame, 4 + 256, 1000, &f) == WS_PARSE_FRAME && f.payload_len == 256, "16-bit length");
    CHECK(ws_frame_parse(frame, 4 + 256, 100, &f) == WS_PARSE_ERROR, "over the payload bound");
    uint8_t payload[300];
    memset(payload, 'z', sizeof(payload));
    size_t n = ws_frame_build(frame, sizeof(frame), WS_OP_TEXT, payload, sizeof(payload), 0x11223344u);
    CHECK(n == 8 + sizeof(payload) && (frame[1] & 0x80) && (frame[1] & 0x7f) == 126, "build masked 16-bit");
    uint8_t key[4] = {frame[4], frame[5], frame[6], frame[7]};
    bool same = true;
    for (size_t i = 0; i < sizeof(payload); i++)
        same = same && (uint8_t)(frame[8 + i] ^ key[i & 3]) == 'z';
    CHECK(same, "mask round trip");
    CHECK(ws_frame_build(frame, 10, WS_OP_TEXT, payload, 20, 1) == 0, "does not fit");
}

static void test_conf(void)
{
    char path[] = "/tmp/rush-selftest-XXXXXX";
    int fd = mkstemp(path);
    TK_ASSERT(fd >= 0);
    const char text[] = "# a scenario\nname = t1\nmode = holds\nusers = 300 # trailing comment\nlanes = 10\n"
                        "sections = A:2x10:100, B:3x5:200\nquick.users = 100\n";
    TK_ASSERT(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
    close(fd);
    struct rush_config c;
    char err[256];
    char *over[] = {"workers=2"};
    CHECK(rush_config_load(&c, path, false, over, 1, err, sizeof(err)) == 0, "load: %s", err);
    CHECK(c.mode == RUSH_MODE_HOLDS && c.users == 300 && c.lanes == 10 && c.workers == 2 && strcmp(c.name, "t1") == 0,
          "values");
    CHECK(c.section_count == 2 && c.capacity == 35 && c.sections[1].first_seat == 20 && c.sections[1].price_cents == 200,
          "sections");
    CHECK(rush_config_load(&c, path, true, NULL, 0, err, sizeof(err)) == 0 && c.users == 100, "quick");
    char *bad[] = {"userz=3"};
    CHECK(rush_config_load(&c, path, false, bad, 1, err, sizeof(err)) != 0 && strstr(err, "unknown key") != NULL,
          "unknown key");
    char *range[] = {"best_pct=101"};
    CHECK(rush_config_load(&c, path, false, range, 1, err, sizeof(err)) != 0, "out of range");
    char *sections[] = {"sections=A:0x10:1"};
    CHECK(rush_config_load(&c, path, false, sections, 1, err, sizeof(err)) != 0, "bad sections");
    unlink(path);
}

static void test_fairness(void)
{
    enum { N = 1000 };
    struct rush_user_record *r = calloc(N, sizeof(*r));
    for (uint32_t i = 0; i < N; i++) {
        r[i].join_done_us = 1000000 + i * 1000u;
        r[i].ticket = i + 1;
        r[i].admitted_us = 5000000 + i * 2000u;
    }
    struct rush_fairness f;
    rush_fairness_compute(r, N, &f, NULL);
    CHECK(f.admitted == N && f.spearman_arrival > 0.9999 && f.overtaken == 0 && f.ticket_inversions == 0,
          "FIFO: rho %f overtaken %llu", f.spearman_arrival, (unsigned long long)f.overtaken);
    for (uint32_t i = 0; i < N; i++)
        r[i].admitted_us = 5000000 + (N - i) * 2000u; /* last in, first out */
    rush_fairness_compute(r, N, &f, NULL);
    CHECK(f.spearman_arrival < -0.9999 && f.overtaken > N / 4 && f.ticket_inversions > N / 2, "LIFO: rho %f",
          f.spearman_arrival);
    r[10].admitted_us = 0;
    r[10].outcome = USER_WAITING;
    rush_fairness_compute(r, N, &f, NULL);
    CHECK(f.waiting_at_end == 1 && f.admitted == N - 1, "still waiting");
    free(r);
}

/* ---- the loop against rush-testserver ---- */

struct probe {
    uint32_t ok, bad, transport, ws_messages, ws_opened, ws_closed, ws_refused;
    uint32_t outstanding;
    uint64_t body_bytes;
    char last_code[RUSH_CODE_BYTES];
};
static struct probe probe;

static void on_answer(struct rush_worker *worker, struct rush_request *request, const struct http_response *response)
{
    (void)worker;
    probe.outstanding--;
    if (response == NULL) {
        probe.transport++;
        return;
    }
    if (response->status == 200 && (request->ctx == 0 || response->body_len == request->ctx))
        probe.ok++;
    else if (response->status == 409)
        http_problem_code(response->body, response->body_len, probe.last_code, sizeof(probe.last_code)), probe.ok++;
    else
        probe.bad++;
    probe.body_bytes += response->body_len;
}

static void on_ws_message(struct rush_worker *worker, uint32_t user, const char *text, size_t len)
{
    (void)worker;
    (void)user;
    if (len > 10 && strncmp(text, "{\"type\":\"position\"", 18) == 0)
        probe.ws_messages++;
}

static void on_ws_event(struct rush_worker *worker, uint32_t user, int event, const struct http_response *response)
{
    (void)worker;
    (void)user;
    if (event == RUSH_WS_OPENED)
        probe.ws_opened++;
    else if (event == RUSH_WS_CLOSED)
        probe.ws_closed++;
    else if (event == RUSH_WS_REFUSED && response != NULL && response->status == 503)
        probe.ws_refused++;
}

static void get(struct rush_loop *loop, const struct rush_target *target, const char *path, uint64_t expect_len)
{
    struct rush_request *request = rush_request_new(loop);
    request->step = STEP_BROWSE_LIST;
    request->done = on_answer;
    request->ctx = expect_len;
    TK_ASSERT(rush_request_format(request, target, "GET", path, "token", NULL, NULL, NULL));
    probe.outstanding++;
    rush_request_submit(loop, request);
}

static bool settled(struct rush_worker *worker)
{
    (void)worker;
    return probe.outstanding == 0;
}

static pid_t start_testserver(const char *binary, uint16_t *port)
{
    int pipe_fd[2];
    TK_ASSERT(pipe(pipe_fd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_fd[1], STDOUT_FILENO);
        close(pipe_fd[0]);
        execl(binary, binary, "--idle-ms", "300", (char *)NULL);
        _exit(127);
    }
    close(pipe_fd[1]);
    FILE *f = fdopen(pipe_fd[0], "r");
    unsigned p = 0;
    if (f == NULL || fscanf(f, "port %u", &p) != 1)
        p = 0;
    if (f != NULL)
        fclose(f);
    *port = (uint16_t)p;
    return pid;
}

static void test_loop(const char *testserver)
{
    uint16_t port = 0;
    pid_t server = start_testserver(testserver, &port);
    CHECK(port != 0, "rush-testserver did not start (%s)", testserver);
    if (port == 0)
        return;
    char url[64], err[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    struct rush_run run;
    memset(&run, 0, sizeof(run));
    TK_ASSERT(rush_target_parse(&run.target, url, err, sizeof(err)) == 0);
    struct rush_shared *shared = rush_shared_create(1, 8);
    struct rush_worker worker = {.index = 0, .run = &run, .config = &run.config, .shared = shared, .user_count = 8};
    worker.stats = rush_shared_worker(shared, 0);
    worker.rng.state = 42;
    struct rush_loop_config config = {.target = run.target, .pool = 4, .ws_max = 8, .source_base = 5000,
                                      .body_max = 4u << 20, .on_ws_message = on_ws_message,
                                      .on_ws_event = on_ws_event};
    struct rush_loop *loop = rush_loop_create(&worker, &config);
    worker.loop = loop;
    /* 200 small answers over 4 keep-alive connections */
    for (int i = 0; i < 200; i++)
        get(loop, &run.target, "/json", 0);
    rush_loop_run(loop, settled, rush_now_us() + 10000000u);
    CHECK(probe.ok + probe.bad == 200 && probe.transport == 0, "json: ok %u bad %u transport %u", probe.ok,
          probe.bad, probe.transport);
    CHECK(worker.stats->connects <= 4, "keep-alive: %llu connects", (unsigned long long)worker.stats->connects);
    /* the server closes idle connections after 300 ms: the next requests must still pass */
    for (int round = 0; round < 3; round++) {
        rush_loop_run(loop, NULL, rush_now_us() + 320000u);
        memset(&probe, 0, sizeof(probe));
        for (int i = 0; i < 8; i++)
            get(loop, &run.target, "/big?n=10", 10);
        rush_loop_run(loop, settled, rush_now_us() + 5000000u);
        CHECK(probe.ok == 8 && probe.transport == 0, "after idle close (round %d): ok %u transport %u", round,
              probe.ok, probe.transport);
    }
    memset(&probe, 0, sizeof(probe));
    get(loop, &run.target, "/chunked?n=300000", 300000);
    get(loop, &run.target, "/big?n=2000000", 2000000);
    get(loop, &run.target, "/close", 2);
    get(loop, &run.target, "/slow?ms=300", 13);
    get(loop, &run.target, "/problem", 0);
    get(loop, &run.target, "/nope", 0); /* 404: answered, counted as bad */
    rush_loop_run(loop, settled, rush_now_us() + 10000000u);
    CHECK(probe.ok == 5 && probe.bad == 1 && probe.transport == 0, "bodies: ok %u bad %u transport %u", probe.ok,
          probe.bad, probe.transport);
    CHECK(strcmp(probe.last_code, "seat_unavailable") == 0, "problem code '%s'", probe.last_code);
    /* WebSockets: 6 sockets x 20 messages, then the server closes; one refused */
    memset(&probe, 0, sizeof(probe));
    for (uint32_t u = 0; u < 6; u++)
        CHECK(rush_ws_open(loop, u, "/ws?n=20&every_ms=5", 9000 + u), "ws open %u", u);
    CHECK(rush_ws_open(loop, 6, "/ws-refused", 9100), "ws open refused");
    rush_loop_run(loop, NULL, rush_now_us() + 1500000u);
    CHECK(probe.ws_opened == 6 && probe.ws_messages == 120 && probe.ws_closed == 6 && probe.ws_refused == 1,
          "ws: opened %u messages %u closed %u refused %u", probe.ws_opened, probe.ws_messages, probe.ws_closed,
          probe.ws_refused);
    CHECK(worker.stats->ws_ping >= 6 * 4, "pings %llu", (unsigned long long)worker.stats->ws_ping);
    CHECK(rush_ws_count(loop) == 0, "sockets left %u", rush_ws_count(loop));
    /* a socket we close ourselves */
    memset(&probe, 0, sizeof(probe));
    CHECK(rush_ws_open(loop, 7, "/ws?n=1000&every_ms=20", 9200), "ws open 7");
    rush_loop_run(loop, NULL, rush_now_us() + 200000u);
    rush_ws_close(loop, 7);
    rush_loop_run(loop, NULL, rush_now_us() + 300000u);
    CHECK(probe.ws_opened == 1 && probe.ws_messages > 3 && rush_ws_count(loop) == 0, "client close: messages %u",
          probe.ws_messages);
    rush_loop_destroy(loop);
    rush_shared_destroy(shared);
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
}

/* The holds audit: a hold made entirely while another certainly held the seat
 * is a double hold; overlaps it cannot be sure of, and holds after the first
 * one's end (expiry or release), are not. */
static void test_hold_audit(void)
{
    pid_t parent = 4000000 + getpid() % 100000; /* no real process: only names the files */
    const uint64_t s = 1000000;
    struct rush_held_seat w0[] = {
        {.start_us = 100, .answered_us = 200, .end_us = 10 * s, .seat = 5, .event = 0},     /* A */
        {.start_us = 300, .answered_us = 400, .end_us = 10 * s, .seat = 5, .event = 0},     /* B: inside A */
        {.start_us = 100, .answered_us = 200, .end_us = s, .seat = 6, .event = 0},          /* C */
        {.start_us = s + 500, .answered_us = s + 600, .end_us = 9 * s, .seat = 6, .event = 0}, /* after C's end */
        {.start_us = 100, .answered_us = 300, .end_us = 10 * s, .seat = 7, .event = 0},     /* E */
        {.start_us = 250, .answered_us = 350, .end_us = 10 * s, .seat = 7, .event = 0},     /* asked before E's answer */
    };
    struct rush_held_seat w1[] = {
        {.start_us = 300, .answered_us = 400, .end_us = 10 * s, .seat = 5, .event = 1}, /* another event */
    };
    char path[512];
    rush_hold_log_path(path, sizeof(path), parent, 0);
    CHECK(rush_hold_log_write(path, w0, 6, 0) == 0, "write %s", path);
    rush_hold_log_path(path, sizeof(path), parent, 1);
    CHECK(rush_hold_log_write(path, w1, 1, 3) == 0, "write %s", path);
    struct rush_hold_audit audit;
    CHECK(rush_hold_audit_run(parent, 2, &audit) == 0, "%s", audit.why_not);
    CHECK(audit.ran && !audit.pass && audit.double_holds == 1 && audit.seat_holds == 7 && audit.seats == 4 &&
              audit.dropped == 3,
          "doubles %llu holds %llu seats %llu dropped %llu", (unsigned long long)audit.double_holds,
          (unsigned long long)audit.seat_holds, (unsigned long long)audit.seats, (unsigned long long)audit.dropped);
    CHECK(strstr(audit.example, "seat 5") != NULL, "example '%s'", audit.example);
    CHECK(access(path, F_OK) != 0, "the logs are removed once read");
    /* a worker that left no log: the audit says so instead of passing */
    CHECK(rush_hold_audit_run(parent, 1, &audit) != 0 && !audit.ran && strstr(audit.why_not, "worker 0") != NULL,
          "missing log: '%s'", audit.why_not);
}

int main(int argc, char **argv)
{
    char testserver[4096];
    snprintf(testserver, sizeof(testserver), "%s/rush-testserver", dirname(strdup(argv[0])));
    if (argc == 3 && strcmp(argv[1], "--testserver") == 0)
        snprintf(testserver, sizeof(testserver), "%s", argv[2]);
    signal(SIGPIPE, SIG_IGN);
    test_hdr();
    test_http();
    test_ws();
    test_conf();
    test_fairness();
    test_hold_audit();
    test_loop(testserver);
    printf("rush-selftest: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
