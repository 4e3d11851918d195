/* reservation_engine.c — the tiketi.v1.SeatCore calls reservation-svc makes.
 *
 * Each call goes to the shard that owns the event (rpc_router: jump hash of the
 * event id over the ordered shard list, as seatcored itself computes it) and
 * runs synchronously on a worker thread, with a timeout from the job's budget.
 * Reads and the calls that carry an idempotency key (Confirm) or are harmless to
 * repeat (Release, ReturnSeat of a seat no longer ours answer NOT_FOUND) are
 * retried on UNAVAILABLE inside the budget; Hold carries the client's key, so a
 * retry of it is answered from the engine's idempotency table. */
#include <stdlib.h>
#include <string.h>

#include "reservation.h"
#include "tk_assert.h"

#define SEATCORE(method) "/tiketi.v1.SeatCore/" method

static grpc_status_code call(struct reservation_service *svc, uint64_t event_id, const char *method,
                             const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                             ProtobufCMessage **reply, const struct rsv_budget *budget, struct rpc_error *error)
{
    TK_ASSERT(event_id != 0 && reply != NULL && error != NULL);
    *reply = NULL;
    int64_t timeout_ms = rsv_budget_call_ms(budget, svc->config->engine_timeout_ms);
    if (timeout_ms == 0) {
        memset(error, 0, sizeof(*error));
        error->code = GRPC_STATUS_DEADLINE_EXCEEDED;
        snprintf(error->name, sizeof(error->name), "unavailable");
        snprintf(error->message, sizeof(error->message), "no time left to call the engine");
        return error->code;
    }
    struct rpc_call_options options = {.timeout_ms = timeout_ms, .idempotent = true};
    grpc_status_code code = rpc_unary(rpc_router_channel(svc->router, event_id), method, request, reply_type, NULL,
                                      reply, &options, error);
    TK_ASSERT(code != GRPC_STATUS_OK || *reply != NULL);
    if (code != GRPC_STATUS_OK && error->name[0] == '\0') /* no trailer: the shard did not answer at all */
        snprintf(error->name, sizeof(error->name), "unavailable");
    return code;
}

/* For calls whose reply is not needed. */
static grpc_status_code call_discard(struct reservation_service *svc, uint64_t event_id, const char *method,
                                     const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                                     const struct rsv_budget *budget, struct rpc_error *error)
{
    ProtobufCMessage *reply;
    grpc_status_code code = call(svc, event_id, method, request, reply_type, &reply, budget, error);
    if (reply != NULL)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code rsv_engine_hold(struct reservation_service *svc, const Tiketi__V1__HoldRequest *request,
                                 const struct rsv_budget *budget, Tiketi__V1__HoldReply **reply,
                                 struct rpc_error *error)
{
    TK_ASSERT(request->n_seats >= 1 && request->idempotency_key[0] != '\0');
    return call(svc, request->event_id, SEATCORE("Hold"), &request->base, &tiketi__v1__hold_reply__descriptor,
                (ProtobufCMessage **)reply, budget, error);
}

grpc_status_code rsv_engine_hold_best(struct reservation_service *svc, const Tiketi__V1__HoldBestRequest *request,
                                      const struct rsv_budget *budget, Tiketi__V1__HoldReply **reply,
                                      struct rpc_error *error)
{
    TK_ASSERT(request->count >= 1 && request->idempotency_key[0] != '\0');
    return call(svc, request->event_id, SEATCORE("HoldBestAvailable"), &request->base,
                &tiketi__v1__hold_reply__descriptor, (ProtobufCMessage **)reply, budget, error);
}

grpc_status_code rsv_engine_get_hold(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                     uint64_t hold_id, const struct rsv_budget *budget, Tiketi__V1__HoldReply **reply,
                                     struct rpc_error *error)
{
    TK_ASSERT(user_id != 0); /* the engine answers NOT_FOUND for another user's hold */
    Tiketi__V1__HoldRef request = TIKETI__V1__HOLD_REF__INIT;
    request.event_id = event_id;
    request.user_id = user_id;
    request.hold_id = hold_id;
    return call(svc, event_id, SEATCORE("GetHold"), &request.base, &tiketi__v1__hold_reply__descriptor,
                (ProtobufCMessage **)reply, budget, error);
}

grpc_status_code rsv_engine_release(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                    uint64_t hold_id, const struct rsv_budget *budget, struct rpc_error *error)
{
    TK_ASSERT(user_id != 0);
    Tiketi__V1__HoldRef request = TIKETI__V1__HOLD_REF__INIT;
    request.event_id = event_id;
    request.user_id = user_id;
    request.hold_id = hold_id;
    return call_discard(svc, event_id, SEATCORE("Release"), &request.base, &tiketi__v1__empty__descriptor, budget,
                        error);
}

grpc_status_code rsv_engine_confirm(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                    uint64_t hold_id, const char *key, const struct rsv_budget *budget,
                                    struct rpc_error *error)
{
    TK_ASSERT(user_id != 0 && key != NULL && key[0] != '\0');
    Tiketi__V1__ConfirmRequest request = TIKETI__V1__CONFIRM_REQUEST__INIT;
    request.event_id = event_id;
    request.user_id = user_id;
    request.hold_id = hold_id;
    request.idempotency_key = (char *)key;
    return call_discard(svc, event_id, SEATCORE("Confirm"), &request.base, &tiketi__v1__hold_reply__descriptor,
                        budget, error);
}

grpc_status_code rsv_engine_return_seat(struct reservation_service *svc, uint64_t event_id, uint64_t user_id,
                                        uint32_t seat, const struct rsv_budget *budget, struct rpc_error *error)
{
    TK_ASSERT(user_id != 0 && seat <= RSV_SEAT_ID_MAX);
    Tiketi__V1__ReturnSeatRequest request = TIKETI__V1__RETURN_SEAT_REQUEST__INIT;
    request.event_id = event_id;
    request.user_id = user_id;
    request.seat = seat;
    return call_discard(svc, event_id, SEATCORE("ReturnSeat"), &request.base, &tiketi__v1__empty__descriptor,
                        budget, error);
}

grpc_status_code rsv_engine_sections(struct reservation_service *svc, uint64_t event_id,
                                     const struct rsv_budget *budget, struct rsv_section_layout *sections,
                                     char (*names)[TK_SECTION_NAME_BYTES_MAX], uint32_t *count,
                                     struct rpc_error *error)
{
    TK_ASSERT(sections != NULL && count != NULL);
    *count = 0;
    Tiketi__V1__EventRef request = TIKETI__V1__EVENT_REF__INIT;
    request.event_id = event_id;
    Tiketi__V1__EventInfo *info;
    grpc_status_code code = call(svc, event_id, SEATCORE("GetEvent"), &request.base,
                                 &tiketi__v1__event_info__descriptor, (ProtobufCMessage **)&info, budget, error);
    if (code != GRPC_STATUS_OK)
        return code;
    if (info->n_sections > RSV_SECTIONS_MAX) { /* the engine's own bound: a reply past it is not ours to trust */
        protobuf_c_message_free_unpacked(&info->base, NULL);
        memset(error, 0, sizeof(*error));
        error->code = GRPC_STATUS_INTERNAL;
        snprintf(error->name, sizeof(error->name), "unavailable");
        snprintf(error->message, sizeof(error->message), "the engine described more sections than it allows");
        return error->code;
    }
    for (size_t s = 0; s < info->n_sections; s++) {
        const Tiketi__V1__Section *in = info->sections[s];
        sections[s] = (struct rsv_section_layout){.rows = in->rows, .seats_per_row = in->seats_per_row,
                                                  .price_cents = in->price_cents};
        if (names != NULL)
            snprintf(names[s], TK_SECTION_NAME_BYTES_MAX, "%s", in->name);
    }
    *count = (uint32_t)info->n_sections;
    protobuf_c_message_free_unpacked(&info->base, NULL);
    return GRPC_STATUS_OK;
}

grpc_status_code rsv_engine_amount(struct reservation_service *svc, uint64_t event_id, const uint32_t *seats,
                                   uint32_t seat_count, const struct rsv_budget *budget, uint64_t *amount_cents,
                                   struct rpc_error *error)
{
    TK_ASSERT(seat_count >= 1 && seat_count <= TK_SEATS_PER_HOLD_MAX && amount_cents != NULL);
    struct rsv_section_layout sections[RSV_SECTIONS_MAX];
    uint32_t count;
    grpc_status_code code = rsv_engine_sections(svc, event_id, budget, sections, NULL, &count, error);
    if (code != GRPC_STATUS_OK)
        return code;
    uint64_t amount = 0;
    for (uint32_t i = 0; i < seat_count; i++) {
        uint32_t price;
        if (!rsv_seat_price(sections, count, seats[i], &price)) {
            memset(error, 0, sizeof(*error));
            error->code = GRPC_STATUS_INTERNAL;
            snprintf(error->name, sizeof(error->name), "unavailable");
            snprintf(error->message, sizeof(error->message), "seat %u is not in the event's layout", seats[i]);
            return error->code;
        }
        amount += price;
    }
    *amount_cents = amount;
    return GRPC_STATUS_OK;
}
