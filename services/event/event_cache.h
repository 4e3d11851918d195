/* event_cache.h — cache-aside of seat catalogs in Redis.
 *
 * One value per event and catalog version, under
 *   tiketi:event:{ID}:seats:VERSION   (the serialized catalog, event_seatmap_codec.h)
 *   tiketi:event:{ID}:seats:current   (the newest version stored)
 * The braces are a Redis Cluster hash tag: an event's keys share a slot, so
 * the store script below may touch them together. A reader asks PostgreSQL
 * for the event's catalog version (one primary-key read; the triggers of 0006
 * bump it on any change) and then Redis for that version only: a changed
 * catalog is never served from the cache, whoever changed it. Storing a version
 * deletes the entry of the version it replaces (that is the invalidation) and
 * never overwrites a newer one; everything also expires after the TTL.
 *
 * The cache is an optimisation: when Redis fails, the catalog is read from
 * PostgreSQL and the error is counted, never shown to the client. */
#ifndef EVENT_CACHE_H
#define EVENT_CACHE_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "event_svc.h"

enum event_cache_result { EVENT_CACHE_HIT, EVENT_CACHE_MISS, EVENT_CACHE_ERROR };

#define EVENT_CACHE_KEY_BYTES 80u

void event_cache_key(uint64_t event_id, uint64_t catalog_version, char *out, size_t out_len);
/* On a hit *reply holds the bytes (reply->str, reply->len): freeReplyObject it. */
enum event_cache_result event_cache_get(struct svc_worker *worker, struct event_metrics *metrics, uint64_t event_id,
                                        uint64_t catalog_version, redisReply **reply);
void event_cache_put(struct svc_worker *worker, struct event_metrics *metrics, uint64_t event_id,
                     uint64_t catalog_version, const uint8_t *bytes, size_t len, uint32_t ttl_s);

#endif
