/* tk_status.c — names and messages of enum tk_status (see tk_status.h). */
#include "tk_status.h"

#include "tk_assert.h"

static const char *const status_names[] = {
    [TK_OK] = "ok",
    [TK_ERR_INVALID] = "invalid_request",
    [TK_ERR_NOT_FOUND] = "not_found",
    [TK_ERR_EXISTS] = "already_exists",
    [TK_ERR_SEAT_CONFLICT] = "seat_unavailable",
    [TK_ERR_SOLD_OUT] = "sold_out",
    [TK_ERR_HOLD_EXPIRED] = "hold_expired",
    [TK_ERR_NOT_OWNER] = "not_owner",
    [TK_ERR_CAP_REACHED] = "seat_cap_reached",
    [TK_ERR_EVENT_CLOSED] = "event_closed",
    [TK_ERR_NOT_ADMITTED] = "not_admitted",
    [TK_ERR_QUEUE_FULL] = "queue_full",
    [TK_ERR_FULL] = "limit_reached",
    [TK_ERR_IDEMPOTENCY_MISMATCH] = "idempotency_key_reused",
    [TK_ERR_BUSY] = "request_in_progress",
    [TK_ERR_IO] = "storage_error",
    [TK_ERR_CORRUPT] = "data_corrupt",
    [TK_ERR_UNAVAILABLE] = "unavailable",
};

static const char *const status_messages[] = {
    [TK_OK] = "ok",
    [TK_ERR_INVALID] = "the request is malformed",
    [TK_ERR_NOT_FOUND] = "no such event, hold or ticket",
    [TK_ERR_EXISTS] = "an event with this id already exists",
    [TK_ERR_SEAT_CONFLICT] = "some of the requested seats are not available; nothing was held",
    [TK_ERR_SOLD_OUT] = "no seats matching the request are available",
    [TK_ERR_HOLD_EXPIRED] = "the hold has expired and its seats went back on sale",
    [TK_ERR_NOT_OWNER] = "the hold or seat belongs to another user",
    [TK_ERR_CAP_REACHED] = "this would exceed the per-user seat limit for the event",
    [TK_ERR_EVENT_CLOSED] = "the event is not on sale",
    [TK_ERR_NOT_ADMITTED] = "a valid admission token from the waiting room is required",
    [TK_ERR_QUEUE_FULL] = "the waiting room is full",
    [TK_ERR_FULL] = "a configured limit was reached",
    [TK_ERR_IDEMPOTENCY_MISMATCH] = "the idempotency key was already used for a different request",
    [TK_ERR_BUSY] = "a request with this idempotency key is still being processed; retry shortly",
    [TK_ERR_IO] = "the write could not be made durable",
    [TK_ERR_CORRUPT] = "stored data failed validation",
    [TK_ERR_UNAVAILABLE] = "the engine is not available",
};

_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == TK_STATUS_COUNT, "every status has a name");
_Static_assert(sizeof(status_messages) / sizeof(status_messages[0]) == TK_STATUS_COUNT, "every status has a message");

const char *tk_status_name(enum tk_status status)
{
    if ((unsigned)status >= TK_STATUS_COUNT)
        return "unknown";
    TK_ASSERT(status_names[status] != NULL);
    return status_names[status];
}

const char *tk_status_message(enum tk_status status)
{
    if ((unsigned)status >= TK_STATUS_COUNT)
        return "unknown status";
    TK_ASSERT(status_messages[status] != NULL);
    return status_messages[status];
}
