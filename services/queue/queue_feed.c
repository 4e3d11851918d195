/* queue_feed.c — the publisher: queue-head moves and admissions on Redis pub/sub.
 *
 * One thread, one Redis connection, synchronous engine calls (nothing else waits
 * on this thread). Every --feed-interval-ms it takes the catalog's list of
 * queued events and, for each event whose lease it holds (or can take):
 *   1. GetQueueInfo on the owning shard (head rank, waiting, active, rate);
 *   2. ListAdmissions from the next rank not yet published, page by page;
 *   3. one Lua script per page that, atomically: checks the lease is still ours
 *      and next_rank is what we last saw, PUBLISHes the page's "admitted"
 *      messages (and the "head" message after the last page), advances
 *      next_rank, renews the lease and trims the set of left ranks below the head.
 * Because (3) is atomic, replicas never publish the same admission twice and a
 * replica killed at any instant loses none: its successor reads next_rank and
 * continues where the last script left off. A replica that lost its lease (it
 * was paused longer than --lease-ms) finds out from the script's answer and
 * stops publishing that event.
 *
 * Guarantees the edges rely on (docs/services/queue.md): on one channel, every
 * admission with a rank below a head message's head_rank has been published
 * before that head message; a head message goes out whenever the head, waiting
 * or active figures change, and otherwise often enough that the gap between two
 * head messages stays under --head-every-ms (as long as rounds keep their pace).
 *
 * Bounds and trade-offs: at most --feed-events-max events (lowest ids first),
 * QUEUE_FEED_PAGES_PER_ROUND_MAX pages of 1000 admissions per event per round
 * (a longer backlog is worked off over the next rounds, the head message then
 * trails the engine's head). Engine calls are sequential: a round costs about
 * two engine calls and one or two Redis calls per held event; a shard that fails
 * in a round is skipped for the rest of it (its events' leases are still
 * renewed) so that one dead shard cannot starve the others. Admissions whose
 * token has already expired are not published (after a long outage, or the
 * first time an event is fed with no next_rank in Redis, which starts at 0). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_format.h"
#include "queue_svc.h"
#include "rpc_log.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"
#include "tk_clock.h"

#define FEED_FIXED_ARGS 13u /* EVAL, script, numkeys, 3 keys, the 7 ARGV before the messages */
#define FEED_MESSAGES_MAX (QUEUE_FEED_PAGE_ADMISSIONS_MAX + 1u) /* a page and the head */
#define FEED_WARN_EVERY_MS 10000u
#define RANK_TEXT_BYTES 16u

struct feed_event {
    uint64_t event_id;
    bool held;
    bool rank_known;
    uint32_t next_rank;              /* the first rank not published yet */
    char expected[RANK_TEXT_BYTES];  /* next_rank as Redis holds it ("" = no key) */
    bool head_sent;
    uint32_t head_rank, waiting, active; /* as last published */
    uint64_t head_sent_ms;           /* the start of the round that sent it (monotonic) */
    uint64_t warned_ms;
};

struct queue_feed {
    struct queue_svc *svc;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    struct feed_event *events, *next_events; /* sorted by id; swapped each round */
    uint32_t count, max;
    uint64_t *ids;
    redisContext *redis;
    uint64_t redis_warned_ms;
    bool shard_failed[RPC_SHARDS_MAX]; /* this round */
    uint64_t round_ms;                 /* when this round started (monotonic) */
    /* The page being published. */
    char *message_text; /* FEED_MESSAGES_MAX x QUEUE_JSON_BYTES_MAX */
    const char *argv[FEED_FIXED_ARGS + FEED_MESSAGES_MAX];
    size_t argv_len[FEED_FIXED_ARGS + FEED_MESSAGES_MAX];
    uint32_t message_count;
};

static uint64_t mono_ms(void)
{
    return tk_monotonic_ns() / 1000000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Redis ---- */

static void redis_drop(struct queue_feed *feed, const char *why)
{
    atomic_fetch_add_explicit(&feed->svc->counters.feed_redis_errors, 1, memory_order_relaxed);
    if (mono_ms() - feed->redis_warned_ms >= FEED_WARN_EVERY_MS) {
        rpc_log(RPC_LOG_WARN, "", "feed: Redis failed (%s); reconnecting, leases lapse meanwhile", why);
        feed->redis_warned_ms = mono_ms();
    }
    if (feed->redis != NULL)
        redisFree(feed->redis);
    feed->redis = NULL;
    for (uint32_t i = 0; i < feed->count; i++) { /* we cannot tell what happened: find out again */
        feed->events[i].held = false;
        feed->events[i].rank_known = false;
    }
}

static bool redis_ready(struct queue_feed *feed)
{
    if (feed->redis != NULL)
        return true;
    char err[256];
    feed->redis = queue_redis_connect(&feed->svc->redis_address, feed->svc->config->redis_timeout_ms, err,
                                      sizeof(err));
    if (feed->redis == NULL) {
        redis_drop(feed, err);
        return false;
    }
    return true;
}

/* Runs a command; NULL (connection dropped) on a transport error or an error reply. */
static redisReply *redis_run(struct queue_feed *feed, int argc, const char **argv, const size_t *argv_len)
{
    TK_ASSERT(feed->redis != NULL && argc >= 1);
    redisReply *reply = redisCommandArgv(feed->redis, argc, argv, argv_len);
    if (reply == NULL) {
        redis_drop(feed, feed->redis->errstr);
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "%.150s", reply->str);
        freeReplyObject(reply);
        redis_drop(feed, why);
        return NULL;
    }
    return reply;
}

/* Lua: take the lease if free, or keep it if it is already ours (after a reconnect). */
static const char acquire_script[] =
    "local holder = redis.call('GET', KEYS[1])\n"
    "if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if holder then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])\n"
    "return 1\n";

static bool lease_acquire(struct queue_feed *feed, struct feed_event *ev)
{
    char key[QUEUE_REDIS_NAME_BYTES], lease_ms[16];
    bool named = queue_lease_key(ev->event_id, key, sizeof(key));
    TK_ASSERT(named);
    snprintf(lease_ms, sizeof(lease_ms), "%u", feed->svc->config->lease_ms);
    const char *replica = feed->svc->config->replica_id;
    const char *argv[] = {"EVAL", acquire_script, "1", key, replica, lease_ms};
    size_t len[] = {4, strlen(acquire_script), 1, strlen(key), strlen(replica), strlen(lease_ms)};
    redisReply *reply = redis_run(feed, 6, argv, len);
    if (reply == NULL)
        return false;
    ev->held = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    freeReplyObject(reply);
    if (ev->held) {
        ev->rank_known = false;
        ev->head_sent = false;
        atomic_fetch_add_explicit(&feed->svc->counters.leases_acquired, 1, memory_order_relaxed);
        rpc_log(RPC_LOG_INFO, "", "feed: publishing event %llu (lease taken)", (unsigned long long)ev->event_id);
    }
    return ev->held;
}

static void lease_release(struct queue_feed *feed, struct feed_event *ev)
{
    TK_ASSERT(ev->held);
    ev->held = false;
    if (feed->redis == NULL)
        return;
    char key[QUEUE_REDIS_NAME_BYTES];
    bool named = queue_lease_key(ev->event_id, key, sizeof(key));
    TK_ASSERT(named);
    const char *replica = feed->svc->config->replica_id;
    const char *argv[] = {"EVAL", queue_script_release, "1", key, replica};
    size_t len[] = {4, strlen(queue_script_release), 1, strlen(key), strlen(replica)};
    redisReply *reply = redis_run(feed, 5, argv, len);
    if (reply != NULL)
        freeReplyObject(reply);
}

static bool read_next_rank(struct queue_feed *feed, struct feed_event *ev)
{
    char key[QUEUE_REDIS_NAME_BYTES];
    bool named = queue_next_rank_key(ev->event_id, key, sizeof(key));
    TK_ASSERT(named);
    const char *argv[] = {"GET", key};
    size_t len[] = {3, strlen(key)};
    redisReply *reply = redis_run(feed, 2, argv, len);
    if (reply == NULL)
        return false;
    ev->next_rank = 0;
    ev->expected[0] = '\0';
    if (reply->type == REDIS_REPLY_STRING && reply->len < RANK_TEXT_BYTES) {
        char *end;
        unsigned long value = strtoul(reply->str, &end, 10);
        bool digits = reply->len > 0 && strspn(reply->str, "0123456789") == reply->len;
        if (digits && *end == '\0' && value <= UINT32_MAX) {
            ev->next_rank = (uint32_t)value;
            memcpy(ev->expected, reply->str, reply->len + 1);
        }
    }
    if (reply->type == REDIS_REPLY_STRING && ev->expected[0] == '\0') /* the script reads garbage as "" too */
        rpc_log(RPC_LOG_WARN, "", "feed: next_rank of event %llu is not a rank; starting over",
                (unsigned long long)ev->event_id);
    freeReplyObject(reply);
    ev->rank_known = true;
    return true;
}

/* ---- one page: messages, then the script ---- */

static char *message_slot(struct queue_feed *feed)
{
    TK_ASSERT(feed->message_count < FEED_MESSAGES_MAX);
    return feed->message_text + (size_t)feed->message_count * QUEUE_JSON_BYTES_MAX;
}

static void message_add(struct queue_feed *feed, size_t len)
{
    TK_ASSERT(len > 0 && len < QUEUE_JSON_BYTES_MAX);
    uint32_t i = FEED_FIXED_ARGS + feed->message_count;
    feed->argv[i] = message_slot(feed);
    feed->argv_len[i] = len;
    feed->message_count++;
}

/* Publishes the collected messages and moves next_rank to new_next. head: the
 * head rank for trimming the left set, or UINT32_MAX to leave it. false: stop
 * working on this event this round. */
static bool publish(struct queue_feed *feed, struct feed_event *ev, uint32_t new_next, uint32_t head)
{
    char keys[3][QUEUE_REDIS_NAME_BYTES], channel[QUEUE_REDIS_NAME_BYTES];
    char lease_ms[16], next[RANK_TEXT_BYTES], head_text[RANK_TEXT_BYTES], retention[16];
    bool named = queue_lease_key(ev->event_id, keys[0], sizeof(keys[0])) &&
                 queue_next_rank_key(ev->event_id, keys[1], sizeof(keys[1])) &&
                 queue_left_key(ev->event_id, keys[2], sizeof(keys[2])) &&
                 queue_channel_name(ev->event_id, channel, sizeof(channel));
    TK_ASSERT(named);
    snprintf(lease_ms, sizeof(lease_ms), "%u", feed->svc->config->lease_ms);
    snprintf(next, sizeof(next), "%u", new_next);
    snprintf(retention, sizeof(retention), "%u", QUEUE_KEY_RETENTION_MS);
    if (head == UINT32_MAX)
        head_text[0] = '\0';
    else
        snprintf(head_text, sizeof(head_text), "%u", head);
    const char *fixed[FEED_FIXED_ARGS] = {"EVAL", queue_script_publish, "3", keys[0], keys[1], keys[2],
                                          feed->svc->config->replica_id, lease_ms, ev->expected, next, channel,
                                          head_text, retention};
    for (uint32_t i = 0; i < FEED_FIXED_ARGS; i++) {
        feed->argv[i] = fixed[i];
        feed->argv_len[i] = strlen(fixed[i]);
    }
    int argc = (int)(FEED_FIXED_ARGS + feed->message_count);
    redisReply *reply = redis_run(feed, argc, feed->argv, feed->argv_len);
    if (reply == NULL)
        return false;
    long long outcome = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -2;
    freeReplyObject(reply);
    if (outcome == 1) {
        snprintf(ev->expected, sizeof(ev->expected), "%s", next);
        ev->next_rank = new_next;
        return true;
    }
    if (outcome == 0) {
        ev->held = false;
        atomic_fetch_add_explicit(&feed->svc->counters.leases_lost, 1, memory_order_relaxed);
        rpc_log(RPC_LOG_INFO, "", "feed: lost the lease of event %llu to another replica",
                (unsigned long long)ev->event_id);
    } else {
        ev->rank_known = false; /* another publisher moved next_rank: read it again next round */
        rpc_log(RPC_LOG_WARN, "", "feed: next_rank of event %llu moved under us; re-reading it",
                (unsigned long long)ev->event_id);
    }
    return false;
}

/* ---- the engine ---- */

static void engine_warn(struct queue_feed *feed, struct feed_event *ev, const char *what,
                        const struct rpc_error *error)
{
    atomic_fetch_add_explicit(&feed->svc->counters.feed_engine_errors, 1, memory_order_relaxed);
    if (mono_ms() - ev->warned_ms < FEED_WARN_EVERY_MS)
        return;
    ev->warned_ms = mono_ms();
    rpc_log(RPC_LOG_WARN, "", "feed: %s of event %llu failed: %s %s%s%s", what, (unsigned long long)ev->event_id,
            rpc_code_name(error->code), error->name, error->name[0] ? " " : "", error->message);
}

static struct rpc_call_options engine_options(const struct queue_feed *feed)
{
    return (struct rpc_call_options){.timeout_ms = feed->svc->config->engine_timeout_ms, .idempotent = true,
                                     .retries = 1};
}

static Tiketi__V1__QueueInfo *queue_info(struct queue_feed *feed, struct feed_event *ev)
{
    Tiketi__V1__EventRef req = TIKETI__V1__EVENT_REF__INIT;
    req.event_id = ev->event_id;
    struct rpc_call_options options = engine_options(feed);
    ProtobufCMessage *reply = NULL;
    struct rpc_error error;
    grpc_status_code code = rpc_unary(rpc_router_channel(feed->svc->router, ev->event_id),
                                      "/tiketi.v1.SeatCore/GetQueueInfo", &req.base,
                                      &tiketi__v1__queue_info__descriptor, NULL, &reply, &options, &error);
    if (code != GRPC_STATUS_OK) {
        engine_warn(feed, ev, "GetQueueInfo", &error);
        return NULL;
    }
    return (Tiketi__V1__QueueInfo *)reply;
}

static Tiketi__V1__ListAdmissionsReply *list_admissions(struct queue_feed *feed, struct feed_event *ev, uint32_t from)
{
    Tiketi__V1__ListAdmissionsRequest req = TIKETI__V1__LIST_ADMISSIONS_REQUEST__INIT;
    req.event_id = ev->event_id;
    req.from_rank = from;
    req.limit = QUEUE_FEED_PAGE_ADMISSIONS_MAX;
    struct rpc_call_options options = engine_options(feed);
    ProtobufCMessage *reply = NULL;
    struct rpc_error error;
    grpc_status_code code = rpc_unary(rpc_router_channel(feed->svc->router, ev->event_id),
                                      "/tiketi.v1.SeatCore/ListAdmissions", &req.base,
                                      &tiketi__v1__list_admissions_reply__descriptor, NULL, &reply, &options, &error);
    if (code != GRPC_STATUS_OK) {
        engine_warn(feed, ev, "ListAdmissions", &error);
        return NULL;
    }
    return (Tiketi__V1__ListAdmissionsReply *)reply;
}

/* ---- one event ---- */

static void collect_admissions(struct queue_feed *feed, struct feed_event *ev,
                               const Tiketi__V1__ListAdmissionsReply *page)
{
    TK_ASSERT(page->n_admissions <= QUEUE_FEED_PAGE_ADMISSIONS_MAX);
    int64_t now = wall_ms();
    for (size_t i = 0; i < page->n_admissions; i++) {
        const Tiketi__V1__Admission *a = page->admissions[i];
        if (a->admission_expires_ms <= now)
            continue; /* a token nobody can use any more */
        struct queue_admitted_message m = {.event_id = ev->event_id, .user_id = a->user_id, .ticket = a->ticket,
                                           .rank = a->rank, .admission_token = a->admission_token,
                                           .expires_ms = a->admission_expires_ms, .ts_ms = now};
        size_t len = queue_json_admitted(&m, message_slot(feed), QUEUE_JSON_BYTES_MAX);
        if (len == 0) {
            engine_warn(feed, ev, "an admission's token (not base64url) or expiry",
                        &(struct rpc_error){.code = GRPC_STATUS_INTERNAL});
            continue;
        }
        message_add(feed, len);
    }
}

/* Adds the head message when it is due: changed, or the next round would be too late. */
static bool collect_head(struct queue_feed *feed, struct feed_event *ev, const Tiketi__V1__QueueInfo *info,
                         uint32_t head_rank)
{
    bool changed = !ev->head_sent || head_rank != ev->head_rank || info->waiting != ev->waiting ||
                   info->active != ev->active;
    /* Unchanged: send it in the last round that still keeps the gap under
     * --head-every-ms, with half a round to spare for the timer's jitter. */
    const struct queue_config *config = feed->svc->config;
    uint64_t due_ms = ev->head_sent_ms + config->head_every_ms;
    if (!changed && feed->round_ms + config->feed_interval_ms + config->feed_interval_ms / 2 < due_ms)
        return false;
    struct queue_head_message m = {.event_id = ev->event_id, .head_rank = head_rank, .waiting = info->waiting,
                                   .active = info->active, .rate_per_s = info->admission_rate_per_s,
                                   .ts_ms = wall_ms()};
    size_t len = queue_json_head(&m, message_slot(feed), QUEUE_JSON_BYTES_MAX);
    TK_ASSERT(len > 0); /* numbers only: always fits */
    message_add(feed, len);
    return true;
}

static void count_published(struct queue_feed *feed, uint32_t admitted, bool head)
{
    atomic_fetch_add_explicit(&feed->svc->counters.published_admitted, admitted, memory_order_relaxed);
    if (head)
        atomic_fetch_add_explicit(&feed->svc->counters.published_head, 1, memory_order_relaxed);
}

/* Pages of admissions from next_rank, then the head; each page one script. */
static void publish_event(struct queue_feed *feed, struct feed_event *ev, const Tiketi__V1__QueueInfo *info)
{
    if (info->head_rank < ev->next_rank) { /* the engine went back: a memory-mode restart, or the event remade */
        rpc_log(RPC_LOG_WARN, "", "feed: event %llu's head (%u) is below the published rank (%u): starting over",
                (unsigned long long)ev->event_id, info->head_rank, ev->next_rank);
        ev->next_rank = 0;
    }
    uint32_t next = ev->next_rank;
    for (uint32_t page_index = 0;; page_index++) {
        feed->message_count = 0;
        bool last = next >= info->head_rank || page_index == QUEUE_FEED_PAGES_PER_ROUND_MAX;
        if (!last) {
            Tiketi__V1__ListAdmissionsReply *page = list_admissions(feed, ev, next);
            if (page == NULL) {
                uint32_t shard = rpc_router_shard_of(feed->svc->router, ev->event_id);
                feed->shard_failed[shard] = true;
                publish(feed, ev, ev->next_rank, UINT32_MAX); /* renew the lease only */
                return;
            }
            collect_admissions(feed, ev, page);
            bool progressed = page->next_rank > next;
            next = progressed ? page->next_rank : next;
            protobuf_c_message_free_unpacked(&page->base, NULL);
            last = !progressed || next >= info->head_rank || page_index + 1 == QUEUE_FEED_PAGES_PER_ROUND_MAX;
        }
        uint32_t admitted = feed->message_count;
        /* Every admission below the head this message names has been published. */
        uint32_t head_rank = next < info->head_rank ? next : info->head_rank;
        bool head = last && collect_head(feed, ev, info, head_rank);
        if (!publish(feed, ev, next, head_rank))
            return;
        count_published(feed, admitted, head);
        if (head) {
            ev->head_sent = true;
            ev->head_rank = head_rank;
            ev->waiting = info->waiting;
            ev->active = info->active;
            ev->head_sent_ms = feed->round_ms;
        }
        if (last)
            return;
    }
}

static void event_step(struct queue_feed *feed, struct feed_event *ev)
{
    if (!ev->held && !lease_acquire(feed, ev))
        return;
    if (!ev->rank_known && !read_next_rank(feed, ev))
        return;
    uint32_t shard = rpc_router_shard_of(feed->svc->router, ev->event_id);
    Tiketi__V1__QueueInfo *info = feed->shard_failed[shard] ? NULL : queue_info(feed, ev);
    if (info == NULL) {
        feed->shard_failed[shard] = true;
        feed->message_count = 0;
        publish(feed, ev, ev->next_rank, UINT32_MAX); /* keep the lease: nobody else would do better */
        return;
    }
    publish_event(feed, ev, info);
    protobuf_c_message_free_unpacked(&info->base, NULL);
}

/* ---- rounds ---- */

/* Merges the catalog's sorted ids into the sorted event table, keeping state;
 * events that left the catalog hand their lease back. */
static void reconcile(struct queue_feed *feed)
{
    uint32_t n = queue_catalog_events(feed->svc->catalog, feed->ids, feed->max);
    uint32_t old = 0, k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = feed->ids[i];
        if (i > 0 && id <= feed->ids[i - 1])
            continue; /* the catalog sorts by id; never trust it blindly */
        while (old < feed->count && feed->events[old].event_id < id) {
            if (feed->events[old].held)
                lease_release(feed, &feed->events[old]);
            old++;
        }
        if (old < feed->count && feed->events[old].event_id == id)
            feed->next_events[k] = feed->events[old++];
        else
            feed->next_events[k] = (struct feed_event){.event_id = id};
        k++;
    }
    for (; old < feed->count; old++)
        if (feed->events[old].held)
            lease_release(feed, &feed->events[old]);
    TK_ASSERT(k <= feed->max);
    struct feed_event *swap = feed->events;
    feed->events = feed->next_events;
    feed->next_events = swap;
    feed->count = k;
}

static void round_run(struct queue_feed *feed)
{
    feed->round_ms = mono_ms();
    memset(feed->shard_failed, 0, sizeof(feed->shard_failed));
    if (redis_ready(feed))
        reconcile(feed);
    uint32_t held = 0;
    for (uint32_t i = 0; i < feed->count; i++) {
        if (feed->redis == NULL && !redis_ready(feed))
            break;
        event_step(feed, &feed->events[i]);
        held += feed->events[i].held;
    }
    atomic_store_explicit(&feed->svc->counters.leases_held, held, memory_order_relaxed);
}

static void *feed_thread(void *arg)
{
    struct queue_feed *feed = arg;
    uint32_t every_ms = feed->svc->config->feed_interval_ms;
    pthread_mutex_lock(&feed->lock);
    while (!feed->stop) {
        pthread_mutex_unlock(&feed->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        round_run(feed);
        until.tv_sec += every_ms / 1000;
        until.tv_nsec += (long)(every_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&feed->lock);
        while (!feed->stop && pthread_cond_timedwait(&feed->wake, &feed->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&feed->lock);
    return NULL;
}

struct queue_feed *queue_feed_start(struct queue_svc *svc)
{
    TK_ASSERT(svc != NULL && svc->catalog != NULL && svc->router != NULL);
    struct queue_feed *feed = calloc(1, sizeof(*feed));
    TK_ASSERT(feed != NULL);
    feed->svc = svc;
    feed->max = svc->config->feed_events_max;
    TK_ASSERT(feed->max >= 1 && feed->max <= QUEUE_FEED_EVENTS_MAX_MAX);
    feed->events = calloc(feed->max, sizeof(struct feed_event));
    feed->next_events = calloc(feed->max, sizeof(struct feed_event));
    feed->ids = calloc(feed->max, sizeof(uint64_t));
    feed->message_text = malloc((size_t)FEED_MESSAGES_MAX * QUEUE_JSON_BYTES_MAX);
    TK_ASSERT(feed->events != NULL && feed->next_events != NULL && feed->ids != NULL && feed->message_text != NULL);
    pthread_mutex_init(&feed->lock, NULL);
    pthread_cond_init(&feed->wake, NULL);
    int rc = pthread_create(&feed->thread, NULL, feed_thread, feed);
    TK_ASSERT(rc == 0);
    return feed;
}

void queue_feed_stop(struct queue_feed *feed)
{
    if (feed == NULL)
        return;
    pthread_mutex_lock(&feed->lock);
    feed->stop = true;
    pthread_cond_signal(&feed->wake);
    pthread_mutex_unlock(&feed->lock);
    pthread_join(feed->thread, NULL);
    uint32_t released = 0;
    for (uint32_t i = 0; i < feed->count && feed->redis != NULL; i++)
        if (feed->events[i].held) {
            lease_release(feed, &feed->events[i]);
            released++;
        }
    if (released > 0)
        rpc_log(RPC_LOG_INFO, "", "feed: handed back %u leases", released);
    atomic_store_explicit(&feed->svc->counters.leases_held, 0, memory_order_relaxed);
    if (feed->redis != NULL)
        redisFree(feed->redis);
    pthread_cond_destroy(&feed->wake);
    pthread_mutex_destroy(&feed->lock);
    free(feed->events);
    free(feed->next_events);
    free(feed->ids);
    free(feed->message_text);
    free(feed);
}
