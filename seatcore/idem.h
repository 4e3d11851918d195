/* idem.h — idempotency keys: "the same key with the same request returns the
 * first answer" (engine wide, bounded, lock-free).
 *
 * A caller's key is scoped by event, user and operation (idem_key_scope) so two
 * users' keys never meet. The first request with a key claims an entry (CAS) and
 * later finishes it with its answer; a concurrent duplicate sees the claim and
 * gets TK_ERR_BUSY ("retry shortly"); a later duplicate gets the stored answer, or
 * TK_ERR_IDEMPOTENCY_MISMATCH if its request differs. Entries live for the
 * configured TTL and are reset by a bounded sweep. A key may sit in any of the
 * TK_IDEMPOTENCY_PROBE_MAX entries after its home; when all are taken by live
 * keys the request is refused with TK_ERR_FULL (size the table for the peak
 * number of keyed requests per TTL). */
#ifndef IDEM_H
#define IDEM_H

#include <stdint.h>

#include "tk_codec.h"
#include "tk_status.h"

struct idem_table;

enum idem_kind { IDEM_HOLD = 1, IDEM_CONFIRM = 2 };

struct idem_answer {
    enum tk_status status;
    uint64_t hold_id;
    uint64_t lsn; /* wait for this before repeating the answer: it may not be durable yet */
};

enum idem_outcome {
    IDEM_CLAIMED,  /* new key: proceed, then idem_finish or idem_abandon */
    IDEM_FOUND,    /* answer filled in */
    IDEM_MISMATCH, /* key used for another request */
    IDEM_BUSY,     /* the first request with this key is still running */
    IDEM_FULL,     /* no room within the probe window */
};

enum tk_status idem_create(struct idem_table **out, uint32_t entries, uint32_t ttl_ms);
void idem_destroy(struct idem_table *table);
uint64_t idem_memory_bytes(const struct idem_table *table);

/* Never 0; the top bit is clear (it marks a claim in progress). */
uint64_t idem_key_scope(uint64_t event_id, uint64_t user_id, enum idem_kind kind, uint64_t client_key);

enum idem_outcome idem_begin(struct idem_table *table, uint64_t key, uint64_t request_hash, int64_t now_ms,
                             struct idem_answer *found, uint32_t *claimed_entry);
/* Stores the answer of a claimed entry; other requests see it from now on. */
void idem_finish(struct idem_table *table, uint32_t entry, uint64_t key, const struct idem_answer *answer,
                 int64_t now_ms);
/* Gives a claimed entry back without an answer (transient failures: retry may differ). */
void idem_abandon(struct idem_table *table, uint32_t entry, uint64_t key);

/* Recovery (single-threaded): records the answer of a replayed request. */
void idem_restore(struct idem_table *table, uint64_t key, uint64_t request_hash, const struct idem_answer *answer,
                  int64_t at_ms);
/* Forgets every key (recovery only, single-threaded). */
void idem_clear(struct idem_table *table);
/* Resets up to budget expired entries; returns how many it looked at. */
uint32_t idem_sweep(struct idem_table *table, int64_t now_ms, uint32_t budget);

/* Snapshot: live finished entries only. */
void idem_snapshot_write(const struct idem_table *table, int64_t now_ms, struct tk_buf *out);
uint64_t idem_snapshot_size(const struct idem_table *table);
enum tk_status idem_snapshot_read(struct idem_table *table, struct tk_reader *in);

#endif
