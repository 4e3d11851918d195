/* rush_audit.c — the consistency audit at the end of a rush.
 *
 * Three witnesses, read after the sagas have come to rest (or settle_s ran out,
 * which is reported): the engine (seatcored GetAvailability on the shard that
 * owns the event, through rpc/'s router: the 2-bit state of every seat), the
 * system of record (PostgreSQL: reservations, reservation_seats), and the
 * clients (what every payment answered, from the users' records). Checks:
 *   - seats sold <= capacity, in the engine and in PostgreSQL
 *   - no seat sold twice (PostgreSQL rows; and no seat in two client-confirmed
 *     reservations)
 *   - the engine and PostgreSQL agree on every sale: the same set of sold seats
 *   - every paid reservation confirmed: each 200 "confirmed" answer's reservation
 *     is confirmed in PostgreSQL and its seats are sold in both (a miss is a
 *     lost sale)
 *   - a declined payment sold nothing: its reservation is released and its
 *     seats were not sold to it
 * gRPC is initialised here, after the workers were forked and have exited
 * (gRPC does not survive a fork). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc_client.h"
#include "rush.h"
#include "tiketi/v1/seatcore.pb-c.h"
#include "tk_assert.h"

#define SHARDS_TEXT_MAX 4096u

struct pg_reservation {
    char uuid[40];
    char status[16];
};

static int by_uuid(const void *a, const void *b)
{
    return strcmp(((const struct pg_reservation *)a)->uuid, ((const struct pg_reservation *)b)->uuid);
}

/* rsv_<16 hex event><16 hex hold> -> EEEEEEEE-EEEE-EEEE-HHHH-HHHHHHHHHHHH */
static bool reservation_uuid(const char *id, char out[40])
{
    if (strncmp(id, "rsv_", 4) != 0 || strlen(id) != 36)
        return false;
    const char *h = id + 4;
    snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    return true;
}

static PGresult *query(PGconn *db, const char *sql, uint64_t event_id)
{
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)event_id);
    const char *params[1] = {id};
    return PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
}

static uint64_t unsettled(PGconn *db, uint64_t event_id)
{
    PGresult *r = query(db,
                        "SELECT count(*) FROM sagas s JOIN reservations r ON r.id = s.reservation_id "
                        "WHERE r.event_id = $1 AND s.state IN ('paying', 'charged', 'compensating', 'refunding', "
                        "'cancelling')",
                        event_id);
    uint64_t n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : UINT64_MAX;
    PQclear(r);
    return n;
}

/* The engine's seat states (0 free, 1 held, 2 sold) into states[capacity]. */
static int engine_states(const char *shards, uint64_t event_id, uint64_t capacity, uint8_t *states,
                         struct rush_audit *out)
{
    char text[SHARDS_TEXT_MAX];
    snprintf(text, sizeof(text), "%s", shards);
    const char *addresses[64];
    uint32_t count = 0;
    char *save = NULL;
    for (char *a = strtok_r(text, ",", &save); a != NULL && count < 64; a = strtok_r(NULL, ",", &save))
        addresses[count++] = a;
    struct rpc_channel_options options = {.max_message_bytes = 16u << 20};
    struct rpc_router *router = rpc_router_create(addresses, count, &options);
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = event_id;
    ProtobufCMessage *reply = NULL;
    struct rpc_error error;
    memset(&error, 0, sizeof(error));
    struct rpc_call_options call = {.timeout_ms = 10000, .idempotent = true};
    grpc_status_code code = rpc_unary(rpc_router_channel(router, event_id), "/tiketi.v1.SeatCore/GetAvailability",
                                      &request.base, &tiketi__v1__availability__descriptor, NULL, &reply, &call,
                                      &error);
    int rc = -1;
    if (code == GRPC_STATUS_OK) {
        const Tiketi__V1__Availability *a = (const void *)reply;
        out->engine_sold = a->sold;
        out->engine_held = a->held;
        out->engine_free = a->free;
        if (a->capacity == capacity && a->states.len * 4u >= capacity) {
            for (uint64_t i = 0; i < capacity; i++)
                states[i] = (a->states.data[i / 4u] >> (2u * (i % 4u))) & 3u;
            rc = 0;
        } else {
            snprintf(out->why_not, sizeof(out->why_not), "the engine's event has %u seats, the scenario %llu",
                     a->capacity, (unsigned long long)capacity);
        }
        protobuf_c_message_free_unpacked(reply, NULL);
    } else {
        snprintf(out->why_not, sizeof(out->why_not), "GetAvailability: gRPC %d %.150s", (int)code, error.message);
    }
    rpc_router_destroy(router);
    return rc;
}

/* PostgreSQL's confirmed seats into sold_pg[capacity] (counts, to see doubles). */
static int pg_sales(PGconn *db, uint64_t event_id, uint64_t capacity, uint32_t *sold_pg, struct rush_audit *out)
{
    PGresult *r = query(db, "SELECT seat FROM reservation_seats WHERE event_id = $1 AND confirmed", event_id);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(out->why_not, sizeof(out->why_not), "PostgreSQL: %s", PQerrorMessage(db));
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    out->pg_sold = (uint64_t)rows;
    for (int i = 0; i < rows; i++) {
        uint64_t seat = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        if (seat < capacity && sold_pg[seat]++ == 0)
            out->pg_sold_distinct++;
        else if (seat >= capacity)
            out->oversold++;
    }
    PQclear(r);
    return 0;
}

static struct pg_reservation *pg_reservations(PGconn *db, uint64_t event_id, uint32_t *count, struct rush_audit *out)
{
    static const char *const names[] = {"pending", "paying", "confirmed", "released", "expired", "cancelling",
                                        "cancelled"};
    PGresult *r = query(db, "SELECT id::text, status FROM reservations WHERE event_id = $1", event_id);
    *count = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return NULL;
    }
    int rows = PQntuples(r);
    struct pg_reservation *list = calloc((size_t)rows + 1, sizeof(*list));
    TK_ASSERT(list != NULL);
    for (int i = 0; i < rows; i++) {
        snprintf(list[i].uuid, sizeof(list[i].uuid), "%s", PQgetvalue(r, i, 0));
        snprintf(list[i].status, sizeof(list[i].status), "%s", PQgetvalue(r, i, 1));
        for (uint32_t k = 0; k < 7; k++)
            if (strcmp(list[i].status, names[k]) == 0)
                out->reservations_by_status[k]++;
    }
    PQclear(r);
    qsort(list, (size_t)rows, sizeof(*list), by_uuid);
    *count = (uint32_t)rows;
    return list;
}

static const char *pg_status(const struct pg_reservation *list, uint32_t count, const char *reservation_id)
{
    struct pg_reservation key;
    if (!reservation_uuid(reservation_id, key.uuid))
        return NULL;
    const struct pg_reservation *hit = bsearch(&key, list, count, sizeof(*list), by_uuid);
    return hit != NULL ? hit->status : NULL;
}

static void check_clients(const struct rush_user_record *records, uint32_t n, uint64_t event_id, uint64_t capacity,
                          const uint8_t *engine, const uint32_t *sold_pg, const struct pg_reservation *list,
                          uint32_t list_count, struct rush_audit *out)
{
    uint8_t *claimed = calloc(capacity + 1, 1);
    TK_ASSERT(claimed != NULL);
    for (uint32_t i = 0; i < n; i++) {
        const struct rush_user_record *r = &records[i];
        if (r->event_id != event_id)
            continue;
        if (r->outcome == USER_PAID) {
            out->client_paid++;
            const char *status = pg_status(list, list_count, r->reservation_id);
            if (status == NULL || strcmp(status, "confirmed") != 0)
                out->paid_not_confirmed++;
            for (uint32_t k = 0; k < r->seat_count; k++) {
                uint32_t seat = r->seats[k];
                if (seat >= capacity || engine[seat] != 2 || sold_pg[seat] == 0)
                    out->paid_seats_not_sold++;
                else if (claimed[seat]++ > 0)
                    out->client_duplicate_seats++;
            }
        } else if (r->outcome == USER_DECLINED) {
            out->declined++;
            const char *status = pg_status(list, list_count, r->reservation_id);
            if (status != NULL && strcmp(status, "confirmed") == 0)
                out->declined_but_sold++;
        }
    }
    free(claimed);
}

int rush_audit_run(const char *pg_url, const char *shards, uint64_t event_id, uint64_t capacity,
                   const struct rush_user_record *records, uint32_t count, uint32_t settle_s, struct rush_audit *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = capacity;
    PGconn *db = PQconnectdb(pg_url);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(out->why_not, sizeof(out->why_not), "PostgreSQL: %s", PQerrorMessage(db));
        PQfinish(db);
        return -1;
    }
    for (uint32_t waited = 0; (out->sagas_unsettled = unsettled(db, event_id)) > 0 && waited < settle_s * 10u;
         waited++)
        usleep(100000);
    uint8_t *engine = calloc(capacity + 1, 1);
    uint32_t *sold_pg = calloc(capacity + 1, sizeof(uint32_t));
    TK_ASSERT(engine != NULL && sold_pg != NULL);
    uint32_t list_count = 0;
    struct pg_reservation *list = NULL;
    int rc = -1;
    if (engine_states(shards, event_id, capacity, engine, out) != 0 || pg_sales(db, event_id, capacity, sold_pg, out))
        goto done;
    list = pg_reservations(db, event_id, &list_count, out);
    for (uint64_t seat = 0; seat < capacity; seat++) {
        if (sold_pg[seat] > 1)
            out->oversold += sold_pg[seat] - 1u;
        if (engine[seat] == 2 && sold_pg[seat] == 0)
            out->engine_not_pg++;
        if (engine[seat] != 2 && sold_pg[seat] > 0)
            out->pg_not_engine++;
    }
    if (out->engine_sold > capacity)
        out->oversold += out->engine_sold - capacity;
    check_clients(records, count, event_id, capacity, engine, sold_pg, list, list_count, out);
    out->ran = true;
    out->pass = out->oversold == 0 && out->engine_not_pg == 0 && out->pg_not_engine == 0 &&
                out->paid_not_confirmed == 0 && out->paid_seats_not_sold == 0 && out->client_duplicate_seats == 0 &&
                out->declined_but_sold == 0 && out->pg_sold_distinct <= capacity && out->engine_sold <= capacity;
    rc = 0;
done:
    free(list);
    free(engine);
    free(sold_pg);
    PQfinish(db);
    return rc;
}
