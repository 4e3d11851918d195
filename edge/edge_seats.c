/* edge_seats.c — seat-map deltas for admitted sockets, one poll per event.
 *
 * Loops say which events have admitted sockets (edge_seats_interest). This
 * thread polls each such event's availability once every --seat-poll-ms —
 * seatcored's GetAvailability (2 bits a seat, a version) on the owning shard
 * when --seatcored-shards is given, else event-svc's GetSeatMap — compares it
 * with the previous poll, and fans the changed seats out to every loop as one
 * ready-made WebSocket message: {"type":"seats","version":V,"changed":[[id,
 * status],...],"from_version":F}: the changes from availability version F to V.
 * A client that holds a seat map older than F missed changes (they happened
 * before this event was watched) and fetches the map again. Its cost is one
 * call per watched event per period, whatever
 * the number of sockets. A round with more than EDGE_SEAT_DELTA_CHANGES_MAX
 * changes sends {"type":"seats","version":V,"changed":[],"resync":true} instead:
 * clients then fetch the seat map again (ETag makes that cheap). The first poll
 * of an event only sets its baseline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edge.h"
#include "rpc_log.h"
#include "tiketi/v1/event.pb-c.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"

#define EVENT_BUCKETS 256u
#define POLL_TIMEOUT_MS_MAX 2000u

struct seat_event {
    uint64_t event_id;
    struct seat_event *next;
    uint32_t interest;
    bool have; /* a baseline was read */
    uint64_t version;
    uint32_t capacity;
    uint8_t *states; /* 2 bits a seat: 0 free, 1 held, 2 sold */
};

struct edge_seats {
    struct edge_server *server;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;                         /* under lock */
    struct edge_interest_list changes; /* under lock */
    struct seat_event *events[EVENT_BUCKETS]; /* thread-owned */
    uint32_t event_count;
};

static const char *const state_names[4] = {"free", "held", "sold", "unknown"};

static uint32_t state_at(const uint8_t *states, uint32_t seat)
{
    return (states[seat / 4] >> (2 * (seat % 4))) & 3u;
}

static uint32_t bucket_of(uint64_t event_id)
{
    return (uint32_t)((event_id * 0x9e3779b97f4a7c15ull) >> 56) % EVENT_BUCKETS;
}

static struct seat_event **event_slot(struct edge_seats *seats, uint64_t event_id)
{
    struct seat_event **at = &seats->events[bucket_of(event_id)];
    while (*at != NULL && (*at)->event_id != event_id)
        at = &(*at)->next;
    return at;
}

/* ---- reading availability ---- */

/* New states (malloc'd, capacity seats) and version of event; false on failure. */
static bool read_engine(struct edge_seats *seats, uint64_t event_id, uint64_t *version, uint32_t *capacity,
                        uint8_t **states)
{
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = event_id;
    ProtobufCMessage *raw = NULL;
    struct rpc_error error;
    uint32_t poll_ms = seats->server->config->seat_poll_ms;
    struct rpc_call_options options = {.timeout_ms = poll_ms < POLL_TIMEOUT_MS_MAX ? poll_ms : POLL_TIMEOUT_MS_MAX};
    if (rpc_unary(rpc_router_channel(seats->server->shards, event_id), EDGE_M_GET_AVAILABILITY, &request.base,
                  &tiketi__v1__availability__descriptor, NULL, &raw, &options, &error) != GRPC_STATUS_OK)
        return false;
    const Tiketi__V1__Availability *availability = (const void *)raw;
    bool ok = availability->capacity <= EDGE_SEATS_PER_EVENT_MAX &&
              availability->states.len >= (availability->capacity + 3u) / 4u;
    if (ok) {
        *version = availability->version;
        *capacity = availability->capacity;
        *states = calloc(1, (availability->capacity + 3u) / 4u + 1u);
        TK_ASSERT(*states != NULL);
        memcpy(*states, availability->states.data, (availability->capacity + 3u) / 4u);
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return ok;
}

static bool read_catalog(struct edge_seats *seats, uint64_t event_id, uint64_t *version, uint32_t *capacity,
                         uint8_t **states)
{
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)event_id);
    Tiketi__V1__GetEventRequest request = TIKETI__V1__GET_EVENT_REQUEST__INIT;
    request.event_id = id;
    ProtobufCMessage *raw = NULL;
    struct rpc_error error;
    struct rpc_call_options options = {.timeout_ms = POLL_TIMEOUT_MS_MAX};
    struct rpc_channel *channel = seats->server->channels[EDGE_DEP_EVENT];
    if (rpc_unary(channel, EDGE_M_GET_SEAT_MAP, &request.base, &tiketi__v1__seat_map__descriptor, NULL, &raw, &options,
                  &error) != GRPC_STATUS_OK)
        return false;
    const Tiketi__V1__SeatMap *map = (const void *)raw;
    bool ok = map->n_seats <= EDGE_SEATS_PER_EVENT_MAX;
    if (ok) {
        *version = map->version;
        *capacity = (uint32_t)map->n_seats;
        *states = calloc(1, (map->n_seats + 3u) / 4u + 1u);
        TK_ASSERT(*states != NULL);
        for (size_t i = 0; i < map->n_seats; i++) {
            uint64_t seat;
            const char *status = map->seats[i]->status;
            bool zero = strcmp(map->seats[i]->seat_id, "0") == 0;
            if (!zero && (!edge_parse_u64(map->seats[i]->seat_id, strlen(map->seats[i]->seat_id), &seat) ||
                          seat >= map->n_seats))
                continue;
            if (zero)
                seat = 0;
            uint32_t state = strcmp(status, "held") == 0 ? 1u : strcmp(status, "sold") == 0 ? 2u : 0u;
            (*states)[seat / 4] |= (uint8_t)(state << (2 * (seat % 4)));
        }
    }
    protobuf_c_message_free_unpacked(raw, NULL);
    return ok;
}

/* ---- deltas ---- */

static void delta_release(struct edge_shared *shared)
{
    free(shared);
}

static void publish(struct edge_seats *seats, struct seat_event *event, uint64_t version, const uint8_t *states)
{
    json_t *changed = json_array();
    uint32_t count = 0;
    for (uint32_t seat = 0; seat < event->capacity && count <= EDGE_SEAT_DELTA_CHANGES_MAX; seat++) {
        uint32_t now = state_at(states, seat);
        if (now == state_at(event->states, seat))
            continue;
        char id[16];
        snprintf(id, sizeof(id), "%u", seat);
        json_array_append_new(changed, json_pack("[s, s]", id, state_names[now]));
        count++;
    }
    json_t *message = json_pack("{s:s, s:I, s:I}", "type", "seats", "version", (json_int_t)version, "from_version",
                                (json_int_t)event->version);
    if (count > EDGE_SEAT_DELTA_CHANGES_MAX) {
        json_array_clear(changed);
        json_object_set_new(message, "resync", json_true());
    }
    json_object_set_new(message, "changed", changed);
    char *text = json_dumps(message, JSON_COMPACT);
    json_decref(message);
    TK_ASSERT(text != NULL);
    size_t len = strlen(text);
    struct edge_seat_delta *delta = malloc(sizeof(*delta) + len + 1);
    TK_ASSERT(delta != NULL);
    edge_shared_init(&delta->shared, seats->server->loop_count, delta_release);
    delta->event_id = event->event_id;
    delta->version = version;
    delta->len = len;
    memcpy(delta->json, text, len + 1);
    free(text);
    atomic_fetch_add_explicit(&seats->server->metrics.seat_deltas, 1, memory_order_relaxed);
    edge_broadcast_all(seats->server, EDGE_BROADCAST_SEATS, &delta->shared);
}

static void poll_event(struct edge_seats *seats, struct seat_event *event)
{
    uint64_t version = 0;
    uint32_t capacity = 0;
    uint8_t *states = NULL;
    atomic_fetch_add_explicit(&seats->server->metrics.seat_polls, 1, memory_order_relaxed);
    bool ok = seats->server->shards != NULL ? read_engine(seats, event->event_id, &version, &capacity, &states)
                                            : read_catalog(seats, event->event_id, &version, &capacity, &states);
    if (!ok) {
        atomic_fetch_add_explicit(&seats->server->metrics.seat_poll_errors, 1, memory_order_relaxed);
        return;
    }
    if (event->have && capacity == event->capacity && version != event->version)
        publish(seats, event, version, states);
    free(event->states);
    event->states = states;
    event->capacity = capacity;
    event->version = version;
    event->have = true;
}

/* ---- interest and the thread ---- */

static void apply_changes(struct edge_seats *seats)
{
    pthread_mutex_lock(&seats->lock);
    struct edge_interest_list taken = edge_interest_take(&seats->changes);
    pthread_mutex_unlock(&seats->lock);
    for (size_t i = 0; i < taken.count; i++) {
        const struct edge_interest_change *change = &taken.items[i];
        struct seat_event **at = event_slot(seats, change->event_id);
        if (change->delta > 0) {
            if (*at == NULL) {
                if (seats->event_count >= EDGE_SEAT_EVENTS_MAX)
                    continue; /* past the bound: no deltas for it (clients can refetch the map) */
                *at = calloc(1, sizeof(**at));
                TK_ASSERT(*at != NULL);
                (*at)->event_id = change->event_id;
                seats->event_count++;
            }
            (*at)->interest++;
        } else if (*at != NULL && --(*at)->interest == 0) {
            struct seat_event *gone = *at;
            *at = gone->next;
            free(gone->states);
            free(gone);
            seats->event_count--;
        }
    }
    free(taken.items);
}

static void *seats_main(void *arg)
{
    struct edge_seats *seats = arg;
    pthread_setname_np(pthread_self(), "edge-seats");
    uint32_t period_ms = seats->server->config->seat_poll_ms;
    pthread_mutex_lock(&seats->lock);
    while (!seats->stop) {
        pthread_mutex_unlock(&seats->lock);
        apply_changes(seats);
        uint64_t started = edge_monotonic_ms();
        for (uint32_t b = 0; b < EVENT_BUCKETS; b++)
            for (struct seat_event *e = seats->events[b]; e != NULL; e = e->next)
                poll_event(seats, e);
        uint64_t spent = edge_monotonic_ms() - started;
        uint64_t wait_ms = spent >= period_ms ? 1 : period_ms - spent;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L)
            until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&seats->lock);
        while (!seats->stop && seats->changes.count == 0 &&
               pthread_cond_timedwait(&seats->wake, &seats->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&seats->lock);
    return NULL;
}

struct edge_seats *edge_seats_start(struct edge_server *server)
{
    struct edge_seats *seats = calloc(1, sizeof(*seats));
    TK_ASSERT(seats != NULL);
    seats->server = server;
    pthread_mutex_init(&seats->lock, NULL);
    pthread_cond_init(&seats->wake, NULL);
    int rc = pthread_create(&seats->thread, NULL, seats_main, seats);
    TK_ASSERT(rc == 0);
    return seats;
}

void edge_seats_stop(struct edge_seats *seats)
{
    if (seats == NULL)
        return;
    pthread_mutex_lock(&seats->lock);
    seats->stop = true;
    pthread_cond_broadcast(&seats->wake);
    pthread_mutex_unlock(&seats->lock);
    pthread_join(seats->thread, NULL);
    for (uint32_t b = 0; b < EVENT_BUCKETS; b++)
        while (seats->events[b] != NULL) {
            struct seat_event *gone = seats->events[b];
            seats->events[b] = gone->next;
            free(gone->states);
            free(gone);
        }
    free(seats->changes.items);
    pthread_cond_destroy(&seats->wake);
    pthread_mutex_destroy(&seats->lock);
    free(seats);
}

void edge_seats_interest(struct edge_seats *seats, uint64_t event_id, int delta)
{
    TK_ASSERT(seats != NULL);
    pthread_mutex_lock(&seats->lock);
    edge_interest_push(&seats->changes, event_id, delta);
    if (delta > 0)
        pthread_cond_signal(&seats->wake); /* a new watch takes its baseline now, not a period later */
    pthread_mutex_unlock(&seats->lock);
}
