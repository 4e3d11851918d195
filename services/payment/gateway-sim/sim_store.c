/* sim_store.c — the simulator's state: payment intents, the idempotency table and
 * the ledger (sim.h).
 *
 * All of it sits under one mutex: the simulator serves tests and a local stack,
 * a few hundred requests a second at most, and one lock makes every
 * read-check-write (confirm once, refund no more than was charged, claim a key
 * once) obviously atomic. Nothing slow (sleeps, network) happens under it.
 *
 * Tables are sized at start and never grow: intents and keys are open-addressed
 * hash tables at most half full; a full table refuses the request (503) with a
 * clear message instead of growing or evicting. Forgotten keys (after a 5xx)
 * leave tombstones; the table is rebuilt when they pile up. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "sim.h"
#include "tk_assert.h"

enum slot_state { SLOT_EMPTY = 0, SLOT_TOMBSTONE, SLOT_IN_PROGRESS, SLOT_DONE };

struct idem_entry {
    enum slot_state state;
    uint64_t fingerprint;
    int status;
    char *body;
    char key[SIM_KEY_BYTES_MAX + 1];
};

struct intent {
    struct sim_intent_view view;
};

enum ledger_kind { LEDGER_CHARGE, LEDGER_REFUND };

struct ledger_entry {
    enum ledger_kind kind;
    uint64_t seq;
    char id[32];
    char intent_id[32];
    char payment_ref[SIM_PAYMENT_REF_BYTES];
    int64_t amount;
    char currency[4];
    int64_t at_ms;
};

struct sim_store {
    pthread_mutex_t lock;
    struct intent *intents;  /* dense, intent_count used */
    uint32_t *intent_index;  /* open-addressed by id hash: 0 empty, else index + 1 */
    uint32_t intent_slots, intents_max, intent_count;
    struct idem_entry *keys;
    uint32_t key_slots, keys_max, key_count, tombstones;
    struct ledger_entry *ledger;
    uint32_t ledger_max, ledger_count, refund_count;
    int64_t charged_total, refunded_total;
    uint64_t random_state;
};

/* ---- helpers ---- */

int64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sim_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint64_t p = 16;
    while (p < n)
        p <<= 1;
    TK_ASSERT(p <= (1ull << 31));
    return (uint32_t)p;
}

static uint64_t next_random_locked(struct sim_store *s)
{
    /* xorshift64*: plenty for fault injection and ids in a test double */
    uint64_t x = s->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->random_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

uint32_t sim_random_ppm(struct sim_store *s)
{
    pthread_mutex_lock(&s->lock);
    uint32_t v = (uint32_t)(next_random_locked(s) % 1000000u);
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void random_id_locked(struct sim_store *s, const char *prefix, char *out, size_t out_len)
{
    uint64_t a = next_random_locked(s), b = next_random_locked(s);
    snprintf(out, out_len, "%s%016llx%08llx", prefix, (unsigned long long)a, (unsigned long long)(b >> 32));
}

enum sim_card sim_card_of(const char *token)
{
    if (strcmp(token, "tok_approve") == 0)
        return SIM_CARD_APPROVE;
    if (strcmp(token, "tok_decline") == 0)
        return SIM_CARD_DECLINE;
    if (strcmp(token, "tok_slow") == 0)
        return SIM_CARD_SLOW;
    if (strcmp(token, "tok_error") == 0)
        return SIM_CARD_ERROR;
    return SIM_CARD_UNKNOWN;
}

void sim_mask_token(const char *token, char *out, size_t out_len)
{
    TK_ASSERT(out_len >= 12);
    size_t len = strlen(token);
    if (len <= 6) {
        snprintf(out, out_len, "****");
        return;
    }
    snprintf(out, out_len, "%.4s****%.2s", token, token + len - 2);
    for (char *p = out; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
            *p = '?';
}

const char *sim_intent_status_name(enum sim_intent_status status)
{
    switch (status) {
    case SIM_INTENT_REQUIRES_CONFIRMATION:
        return "requires_confirmation";
    case SIM_INTENT_PROCESSING:
        return "processing";
    case SIM_INTENT_SUCCEEDED:
        return "succeeded";
    case SIM_INTENT_DECLINED:
        return "requires_payment_method";
    }
    return "unknown";
}

/* ---- create / destroy ---- */

struct sim_store *sim_store_create(uint32_t intents_max, uint32_t keys_max, uint64_t seed)
{
    TK_ASSERT(intents_max >= 1 && keys_max >= 1);
    struct sim_store *s = calloc(1, sizeof(*s));
    TK_ASSERT(s != NULL);
    s->intents_max = intents_max;
    s->intent_slots = pow2_at_least((uint64_t)intents_max * 2);
    s->intents = calloc(intents_max, sizeof(*s->intents));
    s->intent_index = calloc(s->intent_slots, sizeof(*s->intent_index));
    s->keys_max = keys_max;
    s->key_slots = pow2_at_least((uint64_t)keys_max * 2);
    s->keys = calloc(s->key_slots, sizeof(*s->keys));
    s->ledger_max = intents_max * 2; /* one charge per intent, and as many refunds */
    s->ledger = calloc(s->ledger_max, sizeof(*s->ledger));
    TK_ASSERT(s->intents != NULL && s->intent_index != NULL && s->keys != NULL && s->ledger != NULL);
    s->random_state = seed ? seed : 0x9E3779B97F4A7C15ull;
    int rc = pthread_mutex_init(&s->lock, NULL);
    TK_ASSERT(rc == 0);
    return s;
}

void sim_store_destroy(struct sim_store *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->key_slots; i++)
        free(s->keys[i].body);
    free(s->keys);
    free(s->intents);
    free(s->intent_index);
    free(s->ledger);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- idempotency ---- */

static uint64_t key_hash(const char *key)
{
    return XXH3_64bits(key, strlen(key));
}

/* The live slot of key, or UINT32_MAX; *free_slot: where it would go (UINT32_MAX if none). */
static uint32_t key_find_locked(const struct sim_store *s, const char *key, uint32_t *free_slot)
{
    const uint32_t mask = s->key_slots - 1;
    uint32_t slot = (uint32_t)key_hash(key) & mask;
    *free_slot = UINT32_MAX;
    for (uint32_t probe = 0; probe < s->key_slots; probe++, slot = (slot + 1) & mask) {
        const struct idem_entry *e = &s->keys[slot];
        if (e->state == SLOT_EMPTY) {
            if (*free_slot == UINT32_MAX)
                *free_slot = slot;
            return UINT32_MAX;
        }
        if (e->state == SLOT_TOMBSTONE) {
            if (*free_slot == UINT32_MAX)
                *free_slot = slot;
            continue;
        }
        if (strcmp(e->key, key) == 0)
            return slot;
    }
    return UINT32_MAX;
}

/* Re-inserts every live key into a clean table: clears the tombstones. */
static void keys_rebuild_locked(struct sim_store *s)
{
    struct idem_entry *old = s->keys;
    s->keys = calloc(s->key_slots, sizeof(*s->keys));
    TK_ASSERT(s->keys != NULL);
    const uint32_t mask = s->key_slots - 1;
    for (uint32_t i = 0; i < s->key_slots; i++) {
        if (old[i].state != SLOT_IN_PROGRESS && old[i].state != SLOT_DONE)
            continue;
        uint32_t slot = (uint32_t)key_hash(old[i].key) & mask;
        while (s->keys[slot].state != SLOT_EMPTY)
            slot = (slot + 1) & mask;
        s->keys[slot] = old[i];
    }
    s->tombstones = 0;
    free(old);
}

enum sim_idem_result sim_idem_begin(struct sim_store *s, const char *key, uint64_t fingerprint, int *status,
                                    char **body)
{
    TK_ASSERT(key != NULL && key[0] != '\0' && strlen(key) <= SIM_KEY_BYTES_MAX);
    *body = NULL;
    pthread_mutex_lock(&s->lock);
    uint32_t free_slot;
    uint32_t slot = key_find_locked(s, key, &free_slot);
    enum sim_idem_result result;
    if (slot != UINT32_MAX) {
        struct idem_entry *e = &s->keys[slot];
        if (e->fingerprint != fingerprint)
            result = SIM_IDEM_MISMATCH;
        else if (e->state == SLOT_IN_PROGRESS)
            result = SIM_IDEM_IN_PROGRESS;
        else {
            result = SIM_IDEM_REPLAY;
            *status = e->status;
            *body = strdup(e->body != NULL ? e->body : "{}");
            TK_ASSERT(*body != NULL);
        }
    } else if (s->key_count >= s->keys_max || free_slot == UINT32_MAX) {
        result = SIM_IDEM_FULL;
    } else {
        struct idem_entry *e = &s->keys[free_slot];
        if (e->state == SLOT_TOMBSTONE)
            s->tombstones--;
        *e = (struct idem_entry){.state = SLOT_IN_PROGRESS, .fingerprint = fingerprint};
        snprintf(e->key, sizeof(e->key), "%s", key);
        s->key_count++;
        result = SIM_IDEM_NEW;
    }
    pthread_mutex_unlock(&s->lock);
    return result;
}

void sim_idem_finish(struct sim_store *s, const char *key, bool store_answer, int status, const char *body)
{
    pthread_mutex_lock(&s->lock);
    uint32_t free_slot;
    uint32_t slot = key_find_locked(s, key, &free_slot);
    TK_ASSERT(slot != UINT32_MAX); /* begin claimed it and only its owner finishes it */
    struct idem_entry *e = &s->keys[slot];
    TK_ASSERT(e->state == SLOT_IN_PROGRESS);
    if (store_answer) {
        size_t len = body != NULL ? strlen(body) : 0;
        TK_ASSERT(len <= SIM_STORED_RESPONSE_BYTES_MAX);
        e->state = SLOT_DONE;
        e->status = status;
        e->body = strdup(body != NULL ? body : "{}");
        TK_ASSERT(e->body != NULL);
    } else {
        e->state = SLOT_TOMBSTONE;
        s->key_count--;
        s->tombstones++;
        if (s->tombstones > s->key_slots / 4)
            keys_rebuild_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- intents ---- */

/* The intent with id, or NULL. */
static struct intent *intent_find_locked(struct sim_store *s, const char *id)
{
    const uint32_t mask = s->intent_slots - 1;
    uint32_t slot = (uint32_t)key_hash(id) & mask;
    for (uint32_t probe = 0; probe < s->intent_slots; probe++, slot = (slot + 1) & mask) {
        uint32_t index = s->intent_index[slot];
        if (index == 0)
            return NULL;
        TK_ASSERT(index <= s->intent_count);
        if (strcmp(s->intents[index - 1].view.id, id) == 0)
            return &s->intents[index - 1];
    }
    return NULL;
}

static void intent_index_add_locked(struct sim_store *s, const char *id, uint32_t index)
{
    const uint32_t mask = s->intent_slots - 1;
    uint32_t slot = (uint32_t)key_hash(id) & mask;
    while (s->intent_index[slot] != 0) /* at most half full: an empty slot exists */
        slot = (slot + 1) & mask;
    s->intent_index[slot] = index + 1;
}

bool sim_intent_create(struct sim_store *s, int64_t amount, const char *currency, const char *card_token,
                       const char *metadata, const char *payment_ref, struct sim_intent_view *out)
{
    TK_ASSERT(amount > 0 && strlen(currency) == 3);
    TK_ASSERT(strlen(metadata) < SIM_METADATA_BYTES_MAX);
    pthread_mutex_lock(&s->lock);
    bool ok = false;
    if (s->intent_count < s->intents_max) {
        char id[32];
        do /* 96 random bits: a repeat is practically impossible, but cheap to rule out */
            random_id_locked(s, "pi_", id, sizeof(id));
        while (intent_find_locked(s, id) != NULL);
        struct intent *in = &s->intents[s->intent_count];
        memset(in, 0, sizeof(*in));
        struct sim_intent_view *v = &in->view;
        snprintf(v->id, sizeof(v->id), "%s", id);
        v->amount = amount;
        snprintf(v->currency, sizeof(v->currency), "%s", currency);
        v->card = sim_card_of(card_token);
        sim_mask_token(card_token, v->card_hint, sizeof(v->card_hint));
        v->status = SIM_INTENT_REQUIRES_CONFIRMATION;
        snprintf(v->metadata, sizeof(v->metadata), "%s", metadata);
        snprintf(v->payment_ref, sizeof(v->payment_ref), "%s", payment_ref);
        v->created_ms = sim_now_ms();
        intent_index_add_locked(s, id, s->intent_count);
        s->intent_count++;
        *out = *v;
        ok = true;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

bool sim_intent_get(struct sim_store *s, const char *id, struct sim_intent_view *out)
{
    pthread_mutex_lock(&s->lock);
    struct intent *in = intent_find_locked(s, id);
    if (in != NULL)
        *out = in->view;
    pthread_mutex_unlock(&s->lock);
    return in != NULL;
}

enum sim_confirm_step sim_intent_begin_confirm(struct sim_store *s, const char *id, struct sim_intent_view *out)
{
    pthread_mutex_lock(&s->lock);
    struct intent *in = intent_find_locked(s, id);
    enum sim_confirm_step step = SIM_CONFIRM_NOT_FOUND;
    if (in != NULL) {
        step = SIM_CONFIRM_BAD_STATE;
        if (in->view.status == SIM_INTENT_REQUIRES_CONFIRMATION) {
            in->view.status = SIM_INTENT_PROCESSING;
            step = SIM_CONFIRM_STARTED;
        }
        *out = in->view;
    }
    pthread_mutex_unlock(&s->lock);
    return step;
}

static void ledger_add_locked(struct sim_store *s, enum ledger_kind kind, const char *id,
                              const struct sim_intent_view *v, int64_t amount)
{
    TK_ASSERT(s->ledger_count < s->ledger_max); /* charges <= intents, refunds checked by the caller */
    struct ledger_entry *e = &s->ledger[s->ledger_count];
    *e = (struct ledger_entry){.kind = kind, .seq = s->ledger_count + 1, .amount = amount, .at_ms = sim_now_ms()};
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->intent_id, sizeof(e->intent_id), "%s", v->id);
    snprintf(e->payment_ref, sizeof(e->payment_ref), "%s", v->payment_ref);
    snprintf(e->currency, sizeof(e->currency), "%s", v->currency);
    s->ledger_count++;
    if (kind == LEDGER_CHARGE)
        s->charged_total += amount;
    else
        s->refunded_total += amount;
}

void sim_intent_end_confirm(struct sim_store *s, const char *id, bool approved, bool failed,
                            const char *decline_code, struct sim_intent_view *out)
{
    pthread_mutex_lock(&s->lock);
    struct intent *in = intent_find_locked(s, id);
    TK_ASSERT(in != NULL && in->view.status == SIM_INTENT_PROCESSING);
    struct sim_intent_view *v = &in->view;
    if (failed) {
        v->status = SIM_INTENT_REQUIRES_CONFIRMATION; /* nothing happened: it may be confirmed again */
    } else if (approved) {
        v->status = SIM_INTENT_SUCCEEDED;
        random_id_locked(s, "ch_", v->charge_id, sizeof(v->charge_id));
        ledger_add_locked(s, LEDGER_CHARGE, v->charge_id, v, v->amount);
    } else {
        v->status = SIM_INTENT_DECLINED;
        snprintf(v->decline_code, sizeof(v->decline_code), "%s", decline_code ? decline_code : "generic_decline");
    }
    *out = *v;
    pthread_mutex_unlock(&s->lock);
}

enum sim_refund_result sim_refund(struct sim_store *s, const char *intent_id, int64_t amount, char *refund_id,
                                  size_t refund_id_len, int64_t *amount_out, struct sim_intent_view *out)
{
    TK_ASSERT(amount >= 0);
    pthread_mutex_lock(&s->lock);
    struct intent *in = intent_find_locked(s, intent_id);
    enum sim_refund_result result = SIM_REFUND_OK;
    if (in == NULL) {
        result = SIM_REFUND_NOT_FOUND;
    } else if (in->view.status != SIM_INTENT_SUCCEEDED) {
        result = SIM_REFUND_NOT_CHARGED;
    } else {
        int64_t left = in->view.amount - in->view.refunded;
        int64_t want = amount == 0 ? left : amount;
        if (want <= 0 || want > left)
            result = SIM_REFUND_TOO_MUCH;
        else if (s->refund_count >= s->intents_max)
            result = SIM_REFUND_FULL;
        else {
            random_id_locked(s, "re_", refund_id, refund_id_len);
            in->view.refunded += want;
            ledger_add_locked(s, LEDGER_REFUND, refund_id, &in->view, want);
            s->refund_count++;
            *amount_out = want;
        }
    }
    if (in != NULL)
        *out = in->view;
    pthread_mutex_unlock(&s->lock);
    return result;
}

/* ---- ledger ---- */

static bool ledger_match(const struct ledger_entry *e, const char *intent_filter, const char *payment_filter)
{
    if (intent_filter != NULL && strcmp(e->intent_id, intent_filter) != 0)
        return false;
    return payment_filter == NULL || strcmp(e->payment_ref, payment_filter) == 0;
}

char *sim_ledger_json(struct sim_store *s, const char *intent_filter, const char *payment_filter, uint32_t limit)
{
    json_t *entries = json_array();
    uint64_t charges = 0, refunds = 0;
    int64_t charged = 0, refunded = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t matching = 0;
    for (uint32_t i = 0; i < s->ledger_count; i++)
        matching += ledger_match(&s->ledger[i], intent_filter, payment_filter) ? 1u : 0u;
    uint32_t skip = matching > limit ? matching - limit : 0; /* keep the newest `limit` */
    for (uint32_t i = 0; i < s->ledger_count; i++) {
        const struct ledger_entry *e = &s->ledger[i];
        if (!ledger_match(e, intent_filter, payment_filter))
            continue;
        if (e->kind == LEDGER_CHARGE) {
            charges++;
            charged += e->amount;
        } else {
            refunds++;
            refunded += e->amount;
        }
        if (skip > 0) {
            skip--;
            continue;
        }
        json_array_append_new(entries, json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:I}", "seq", (json_int_t)e->seq,
                                                 "type", e->kind == LEDGER_CHARGE ? "charge" : "refund", "id",
                                                 e->id, "payment_intent", e->intent_id, "amount",
                                                 (json_int_t)e->amount, "currency", e->currency, "payment_id",
                                                 e->payment_ref, "created_ms", (json_int_t)e->at_ms));
    }
    pthread_mutex_unlock(&s->lock);
    json_t *root = json_pack("{s:I,s:I,s:I,s:I,s:o}", "charges", (json_int_t)charges, "refunds",
                             (json_int_t)refunds, "charged_amount", (json_int_t)charged, "refunded_amount",
                             (json_int_t)refunded, "entries", entries);
    TK_ASSERT(root != NULL);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    TK_ASSERT(text != NULL);
    return text;
}
