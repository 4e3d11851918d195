/* tk_status.h — the one error vocabulary of the engine and the services.
 *
 * Every failure returns one of these codes; tk_status_name() gives a stable
 * machine name and tk_status_message() a sentence a client can be shown. The rpc
 * layer maps them to gRPC codes and the edge to HTTP problem codes, so a code
 * added here must be added to the tables in tk_status.c (a static assert checks
 * that the table is complete). */
#ifndef TK_STATUS_H
#define TK_STATUS_H

enum tk_status {
    TK_OK = 0,
    TK_ERR_INVALID,          /* malformed request: bad layout, bad seat id, zero user ... */
    TK_ERR_NOT_FOUND,        /* unknown event, hold, ticket */
    TK_ERR_EXISTS,           /* event id already used */
    TK_ERR_SEAT_CONFLICT,    /* some requested seats are not free; nothing was taken */
    TK_ERR_SOLD_OUT,         /* best-available found no seats at all */
    TK_ERR_HOLD_EXPIRED,     /* the hold passed its TTL before this request */
    TK_ERR_NOT_OWNER,        /* the hold or seat belongs to another user */
    TK_ERR_CAP_REACHED,      /* per-user seat cap for the event */
    TK_ERR_EVENT_CLOSED,     /* event closed or cancelled, or sale not open yet */
    TK_ERR_NOT_ADMITTED,     /* queued event and no valid admission token */
    TK_ERR_QUEUE_FULL,       /* waiting queue at its bound */
    TK_ERR_FULL,             /* another explicit bound: events, holds, idempotency keys */
    TK_ERR_IDEMPOTENCY_MISMATCH, /* same idempotency key, different request */
    TK_ERR_BUSY,             /* the same idempotency key is being processed right now; retry */
    TK_ERR_IO,               /* WAL or snapshot I/O failed: nothing acknowledged */
    TK_ERR_CORRUPT,          /* on-disk data failed validation */
    TK_ERR_UNAVAILABLE,      /* engine stopped or failed; try another time */
    TK_STATUS_COUNT
};

const char *tk_status_name(enum tk_status status);
const char *tk_status_message(enum tk_status status);

#endif
