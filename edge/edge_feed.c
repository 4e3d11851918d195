/* edge_feed.c — the queue feed: one Redis subscriber per edge process.
 *
 * queue-svc publishes each waiting room's head moves, admissions and leaves on
 * tiketi:queue:<event_id> (docs/services/queue.md). This thread subscribes to
 * the channels of the events that have sockets on some loop (loops say so with
 * edge_feed_interest), keeps per event the head and the set L of ranks that left
 * (read once from tiketi:queue:{<id>}:left after subscribing, then kept up to
 * date from left messages), and fans each message out to every loop as an
 * immutable reference-counted payload: a head message becomes a snapshot
 * carrying L, so a loop computes positions without asking anything. No
 * per-client polling anywhere.
 *
 * Redis: the subscriber connection is a blocking hiredis context read only when
 * poll() says it is readable (so reads never wait), beside an eventfd that
 * wakes the thread for interest changes; a second, short-timeout connection
 * reads the left sets. On any error both are dropped and remade after a
 * backoff (1 s, doubling to 8 s); channels are subscribed again and left sets
 * read again. Messages missed meanwhile are repaired by the sockets' Status
 * calls (edge_ws.c). hiredis 0.14: no RESP3, no TLS. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "edge.h"
#include "edge_position.h"
#include "rpc_log.h"
#include "tk_assert.h"

#define EVENT_BUCKETS 1024u
#define LEFT_INITIAL 64u
#define REDIS_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 1000u
#define BACKOFF_MAX_MS 8000u
#define CHANNEL_PREFIX "tiketi:queue:"

struct feed_event {
    uint64_t event_id;
    struct feed_event *next;
    uint32_t interest; /* loops with sockets of this event */
    bool have_head;
    uint32_t head_rank;
    struct edge_left_set left;
    struct edge_feed_head *latest; /* one reference: resent to a loop that joins later */
};

struct edge_feed {
    struct edge_server *server;
    pthread_t thread;
    int wake_fd;
    _Atomic bool stop;
    pthread_mutex_t lock;
    struct edge_interest_list changes; /* under lock */
    /* thread-owned below */
    char host[EDGE_ADDRESS_BYTES];
    int port, db;
    redisContext *sub, *cmd;
    uint64_t next_connect_ms;
    uint32_t backoff_ms;
    struct feed_event *events[EVENT_BUCKETS];
    uint32_t event_count;
    bool warned_full;
};

static bool parse_url(const char *url, char *host, size_t host_len, int *port, int *db)
{
    if (strncmp(url, "redis://", 8) != 0)
        return false;
    const char *at = url + 8;
    const char *colon = strrchr(at, ':');
    if (colon == NULL || (size_t)(colon - at) >= host_len || colon == at)
        return false;
    memcpy(host, at, (size_t)(colon - at));
    host[colon - at] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (p <= 0 || p > 65535)
        return false;
    *port = (int)p;
    *db = 0;
    if (*end == '/') {
        long d = strtol(end + 1, &end, 10);
        if (d < 0 || d > 1000)
            return false;
        *db = (int)d;
    }
    return *end == '\0';
}

/* ---- events ---- */

static uint32_t bucket_of(uint64_t event_id)
{
    return (uint32_t)((event_id * 0x9e3779b97f4a7c15ull) >> 54) % EVENT_BUCKETS;
}

static struct feed_event *event_find(struct edge_feed *feed, uint64_t event_id)
{
    for (struct feed_event *e = feed->events[bucket_of(event_id)]; e != NULL; e = e->next)
        if (e->event_id == event_id)
            return e;
    return NULL;
}

static void event_free(struct edge_feed *feed, struct feed_event *event)
{
    struct feed_event **at = &feed->events[bucket_of(event->event_id)];
    while (*at != event)
        at = &(*at)->next;
    *at = event->next;
    if (event->latest != NULL)
        edge_shared_unref(&event->latest->shared);
    free(event->left.ranks);
    free(event);
    feed->event_count--;
}

static void left_add(struct feed_event *event, uint32_t rank)
{
    if (event->have_head && rank < event->head_rank)
        return;
    struct edge_left_set *left = &event->left;
    if (left->count == left->capacity && left->capacity < EDGE_LEFT_RANKS_MAX) {
        uint32_t capacity = left->capacity ? left->capacity * 2 : LEFT_INITIAL;
        if (capacity > EDGE_LEFT_RANKS_MAX)
            capacity = EDGE_LEFT_RANKS_MAX;
        uint32_t *ranks = realloc(left->ranks, capacity * sizeof(uint32_t));
        TK_ASSERT(ranks != NULL);
        left->ranks = ranks;
        left->capacity = capacity;
    }
    if (!edge_left_add(left, rank))
        rpc_log(RPC_LOG_WARN, "", "event %llu: more than %u leaves ahead of the head; positions may be high",
                (unsigned long long)event->event_id, EDGE_LEFT_RANKS_MAX);
}

/* ---- Redis ---- */

static void disconnect(struct edge_feed *feed, const char *why)
{
    if (feed->sub == NULL && feed->cmd == NULL)
        return;
    rpc_log(RPC_LOG_WARN, "", "queue feed: Redis connection lost (%s); reconnecting", why);
    if (feed->sub != NULL)
        redisFree(feed->sub);
    if (feed->cmd != NULL)
        redisFree(feed->cmd);
    feed->sub = feed->cmd = NULL;
    atomic_store(&feed->server->dependency_up[EDGE_DEP_REDIS], false);
    feed->next_connect_ms = edge_monotonic_ms() + feed->backoff_ms;
    feed->backoff_ms = feed->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : feed->backoff_ms * 2;
}

static redisContext *open_context(struct edge_feed *feed)
{
    struct timeval timeout = {.tv_sec = REDIS_TIMEOUT_MS / 1000, .tv_usec = (REDIS_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(feed->host, feed->port, timeout);
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, timeout);
    if (feed->db != 0) {
        redisReply *reply = redisCommand(c, "SELECT %d", feed->db);
        bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
        if (reply != NULL)
            freeReplyObject(reply);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static bool send_command(struct edge_feed *feed, const char *verb, uint64_t event_id)
{
    if (redisAppendCommand(feed->sub, "%s " CHANNEL_PREFIX "%llu", verb, (unsigned long long)event_id) != REDIS_OK)
        return false;
    int done = 0;
    while (!done)
        if (redisBufferWrite(feed->sub, &done) != REDIS_OK)
            return false;
    return true;
}

/* L after subscribing: ranks that left before we listened. */
static bool read_left_set(struct edge_feed *feed, struct feed_event *event)
{
    redisReply *reply = redisCommand(feed->cmd, "ZRANGEBYSCORE tiketi:queue:{%llu}:left -inf +inf",
                                     (unsigned long long)event->event_id);
    if (reply == NULL)
        return false;
    bool ok = reply->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < reply->elements; i++) {
        const redisReply *item = reply->element[i];
        uint64_t rank;
        if (item->type == REDIS_REPLY_STRING && edge_parse_u64(item->str, item->len, &rank) && rank <= UINT32_MAX)
            left_add(event, (uint32_t)rank);
        else if (item->type == REDIS_REPLY_STRING && item->len == 1 && item->str[0] == '0')
            left_add(event, 0);
    }
    freeReplyObject(reply);
    return ok;
}

static bool follow(struct edge_feed *feed, struct feed_event *event)
{
    if (feed->sub == NULL)
        return true; /* done at the next connection */
    if (!send_command(feed, "SUBSCRIBE", event->event_id) || !read_left_set(feed, event)) {
        disconnect(feed, "subscribe failed");
        return false;
    }
    return true;
}

static void connect_redis(struct edge_feed *feed)
{
    feed->sub = open_context(feed);
    feed->cmd = feed->sub != NULL ? open_context(feed) : NULL;
    if (feed->sub == NULL || feed->cmd == NULL) {
        if (feed->sub != NULL)
            redisFree(feed->sub);
        feed->sub = NULL;
        feed->next_connect_ms = edge_monotonic_ms() + feed->backoff_ms;
        feed->backoff_ms = feed->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : feed->backoff_ms * 2;
        return;
    }
    atomic_fetch_add_explicit(&feed->server->metrics.feed_reconnects, 1, memory_order_relaxed);
    for (uint32_t b = 0; b < EVENT_BUCKETS; b++)
        for (struct feed_event *e = feed->events[b]; e != NULL; e = e->next)
            if (!follow(feed, e))
                return;
    feed->backoff_ms = BACKOFF_MIN_MS;
    atomic_store(&feed->server->dependency_up[EDGE_DEP_REDIS], true);
    rpc_log(RPC_LOG_INFO, "", "queue feed: subscribed on %s:%d (%u events)", feed->host, feed->port,
            feed->event_count);
}

/* ---- messages ---- */

static void head_release(struct edge_shared *shared)
{
    free(shared);
}

static void on_head(struct edge_feed *feed, struct feed_event *event, const json_t *message)
{
    json_int_t head_rank = json_integer_value(json_object_get(message, "head_rank"));
    if (!json_is_integer(json_object_get(message, "head_rank")) || head_rank < 0 || head_rank > UINT32_MAX) {
        atomic_fetch_add_explicit(&feed->server->metrics.feed_bad_messages, 1, memory_order_relaxed);
        return;
    }
    double rate = json_number_value(json_object_get(message, "rate")); /* 0 when absent */
    event->have_head = true;
    event->head_rank = (uint32_t)head_rank;
    edge_left_trim(&event->left, event->head_rank);
    uint32_t loops = feed->server->loop_count;
    struct edge_feed_head *head = malloc(sizeof(*head) + event->left.count * sizeof(uint32_t));
    TK_ASSERT(head != NULL);
    edge_shared_init(&head->shared, loops + 1, head_release); /* + the one kept as latest */
    head->event_id = event->event_id;
    head->head_rank = event->head_rank;
    head->rate = rate > 0 ? rate : 0;
    head->left_count = event->left.count;
    if (event->left.count > 0)
        memcpy(head->left, event->left.ranks, event->left.count * sizeof(uint32_t));
    if (event->latest != NULL)
        edge_shared_unref(&event->latest->shared);
    event->latest = head;
    edge_broadcast_all(feed->server, EDGE_BROADCAST_FEED_HEAD, &head->shared);
}

static bool user_and_rank(const json_t *message, uint64_t *user_id, uint32_t *rank)
{
    const json_t *user = json_object_get(message, "user_id");
    const json_t *r = json_object_get(message, "rank");
    if (!json_is_string(user) || !json_is_integer(r) || json_integer_value(r) < 0 ||
        json_integer_value(r) > UINT32_MAX)
        return false;
    *rank = (uint32_t)json_integer_value(r);
    return edge_parse_u64(json_string_value(user), json_string_length(user), user_id);
}

static void on_admitted(struct edge_feed *feed, struct feed_event *event, const json_t *message)
{
    uint64_t user_id;
    uint32_t rank;
    const json_t *token = json_object_get(message, "admission_token");
    const json_t *expires = json_object_get(message, "expires_at");
    if (!user_and_rank(message, &user_id, &rank) || !json_is_string(token) ||
        json_string_length(token) >= EDGE_ADMISSION_TOKEN_BYTES) {
        atomic_fetch_add_explicit(&feed->server->metrics.feed_bad_messages, 1, memory_order_relaxed);
        return;
    }
    size_t token_len = json_string_length(token);
    struct edge_feed_admitted *admitted = malloc(sizeof(*admitted) + token_len + 1);
    TK_ASSERT(admitted != NULL);
    edge_shared_init(&admitted->shared, feed->server->loop_count, head_release);
    admitted->event_id = event->event_id;
    admitted->user_id = user_id;
    admitted->rank = rank;
    bool expires_fits = json_is_string(expires) && json_string_length(expires) < sizeof(admitted->expires_at);
    snprintf(admitted->expires_at, sizeof(admitted->expires_at), "%s", expires_fits ? json_string_value(expires) : "");
    memcpy(admitted->token, json_string_value(token), token_len + 1);
    edge_broadcast_all(feed->server, EDGE_BROADCAST_FEED_ADMITTED, &admitted->shared);
}

static void on_left(struct edge_feed *feed, struct feed_event *event, const json_t *message)
{
    uint64_t user_id;
    uint32_t rank;
    if (!user_and_rank(message, &user_id, &rank)) {
        atomic_fetch_add_explicit(&feed->server->metrics.feed_bad_messages, 1, memory_order_relaxed);
        return;
    }
    left_add(event, rank);
    struct edge_feed_left *left = malloc(sizeof(*left));
    TK_ASSERT(left != NULL);
    edge_shared_init(&left->shared, feed->server->loop_count, head_release);
    left->event_id = event->event_id;
    left->user_id = user_id;
    left->rank = rank;
    edge_broadcast_all(feed->server, EDGE_BROADCAST_FEED_LEFT, &left->shared);
}

static void on_message(struct edge_feed *feed, const redisReply *channel, const redisReply *payload)
{
    size_t prefix = sizeof(CHANNEL_PREFIX) - 1;
    uint64_t event_id;
    if (channel->len <= prefix || !edge_parse_u64(channel->str + prefix, channel->len - prefix, &event_id))
        return;
    struct feed_event *event = event_find(feed, event_id);
    if (event == NULL)
        return; /* unsubscribed a moment ago */
    atomic_fetch_add_explicit(&feed->server->metrics.feed_messages, 1, memory_order_relaxed);
    json_t *message = payload->len <= EDGE_FEED_MESSAGE_BYTES ? json_loadb(payload->str, payload->len, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(message, "type"));
    if (type == NULL)
        atomic_fetch_add_explicit(&feed->server->metrics.feed_bad_messages, 1, memory_order_relaxed);
    else if (strcmp(type, "head") == 0)
        on_head(feed, event, message);
    else if (strcmp(type, "admitted") == 0)
        on_admitted(feed, event, message);
    else if (strcmp(type, "left") == 0)
        on_left(feed, event, message);
    /* other types may come later: ignored, as the feed's contract says */
    json_decref(message);
}

static void read_replies(struct edge_feed *feed)
{
    if (redisBufferRead(feed->sub) != REDIS_OK) {
        disconnect(feed, feed->sub->errstr);
        return;
    }
    for (;;) {
        void *raw = NULL;
        if (redisGetReplyFromReader(feed->sub, &raw) != REDIS_OK) {
            disconnect(feed, "unreadable reply");
            return;
        }
        if (raw == NULL)
            return;
        redisReply *reply = raw;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 && reply->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(reply->element[0]->str, "message") == 0 && reply->element[1]->type == REDIS_REPLY_STRING &&
            reply->element[2]->type == REDIS_REPLY_STRING)
            on_message(feed, reply->element[1], reply->element[2]);
        freeReplyObject(reply);
    }
}

/* ---- interest ---- */

static void apply_change(struct edge_feed *feed, uint64_t event_id, int delta)
{
    struct feed_event *event = event_find(feed, event_id);
    if (delta > 0) {
        if (event == NULL) {
            if (feed->event_count >= EDGE_FEED_EVENTS_MAX) {
                if (!feed->warned_full)
                    rpc_log(RPC_LOG_WARN, "", "queue feed: following %u events already; event %llu relies on Status "
                                              "calls", EDGE_FEED_EVENTS_MAX, (unsigned long long)event_id);
                feed->warned_full = true;
                return;
            }
            event = calloc(1, sizeof(*event));
            TK_ASSERT(event != NULL);
            event->event_id = event_id;
            uint32_t b = bucket_of(event_id);
            event->next = feed->events[b];
            feed->events[b] = event;
            feed->event_count++;
            follow(feed, event);
        } else if (event->latest != NULL) { /* a loop that joins now gets the head without waiting for the next */
            for (uint32_t i = 0; i < feed->server->loop_count; i++)
                edge_shared_ref(&event->latest->shared);
            edge_broadcast_all(feed->server, EDGE_BROADCAST_FEED_HEAD, &event->latest->shared);
        }
        event->interest++;
        return;
    }
    if (event == NULL)
        return; /* was never followed (the table was full) */
    TK_ASSERT(event->interest > 0);
    if (--event->interest > 0)
        return;
    if (feed->sub != NULL && !send_command(feed, "UNSUBSCRIBE", event_id))
        disconnect(feed, "unsubscribe failed");
    event_free(feed, event);
}

static void apply_changes(struct edge_feed *feed)
{
    pthread_mutex_lock(&feed->lock);
    struct edge_interest_list changes = edge_interest_take(&feed->changes);
    pthread_mutex_unlock(&feed->lock);
    for (size_t i = 0; i < changes.count; i++)
        apply_change(feed, changes.items[i].event_id, changes.items[i].delta);
    free(changes.items);
}

void edge_feed_interest(struct edge_feed *feed, uint64_t event_id, int delta)
{
    if (feed == NULL)
        return; /* no Redis configured: sockets live on Status calls */
    pthread_mutex_lock(&feed->lock);
    edge_interest_push(&feed->changes, event_id, delta);
    pthread_mutex_unlock(&feed->lock);
    uint64_t one = 1;
    ssize_t n = write(feed->wake_fd, &one, sizeof(one));
    (void)n; /* a full eventfd counter still wakes the thread */
}

/* ---- the thread ---- */

static void *feed_main(void *arg)
{
    struct edge_feed *feed = arg;
    pthread_setname_np(pthread_self(), "edge-feed");
    while (!atomic_load(&feed->stop)) {
        if (feed->sub == NULL && edge_monotonic_ms() >= feed->next_connect_ms)
            connect_redis(feed);
        apply_changes(feed);
        struct pollfd fds[2] = {{.fd = feed->wake_fd, .events = POLLIN}, {.fd = -1}};
        if (feed->sub != NULL)
            fds[1] = (struct pollfd){.fd = feed->sub->fd, .events = POLLIN};
        int ready = poll(fds, 2, 250);
        if (ready < 0 && errno != EINTR)
            rpc_log(RPC_LOG_ERROR, "", "queue feed: poll: %s", strerror(errno));
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            ssize_t n = read(feed->wake_fd, &count, sizeof(count));
            (void)n;
        }
        if (feed->sub != NULL && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_replies(feed);
    }
    return NULL;
}

struct edge_feed *edge_feed_start(struct edge_server *server)
{
    const struct edge_config *config = server->config;
    if (config->redis_url[0] == '\0')
        return NULL;
    struct edge_feed *feed = calloc(1, sizeof(*feed));
    TK_ASSERT(feed != NULL);
    feed->server = server;
    bool parsed = parse_url(config->redis_url, feed->host, sizeof(feed->host), &feed->port, &feed->db);
    TK_ASSERT(parsed); /* checked with the settings (edge_config.c) */
    feed->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TK_ASSERT(feed->wake_fd >= 0);
    feed->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&feed->lock, NULL);
    int rc = pthread_create(&feed->thread, NULL, feed_main, feed);
    TK_ASSERT(rc == 0);
    return feed;
}

void edge_feed_stop(struct edge_feed *feed)
{
    if (feed == NULL)
        return;
    atomic_store(&feed->stop, true);
    uint64_t one = 1;
    ssize_t n = write(feed->wake_fd, &one, sizeof(one));
    (void)n;
    pthread_join(feed->thread, NULL);
    for (uint32_t b = 0; b < EVENT_BUCKETS; b++)
        while (feed->events[b] != NULL)
            event_free(feed, feed->events[b]);
    if (feed->sub != NULL)
        redisFree(feed->sub);
    if (feed->cmd != NULL)
        redisFree(feed->cmd);
    free(feed->changes.items);
    close(feed->wake_fd);
    pthread_mutex_destroy(&feed->lock);
    free(feed);
}

bool edge_redis_url_valid(const char *url)
{
    char host[EDGE_ADDRESS_BYTES];
    int port, db;
    return parse_url(url, host, sizeof(host), &port, &db);
}
