/* event_engine.h — calls to the engine shards (tiketi.v1.SeatCore).
 *
 * An event lives on the shard rpc_router_shard_of() names: jump consistent
 * hash of tk_hash_u64(event id) over the ordered shard list, the same
 * computation every service and seatcored itself make. Calls run on worker
 * threads: single-shard calls are synchronous (a worker may block); a listing
 * that spans shards sends one Batch per shard asynchronously, all at once, and
 * waits for the last answer, so its latency is the slowest shard's, not the sum.
 *
 * Engine failures reach the client as UNAVAILABLE naming the shard: the edge
 * shows "try again", and nothing stale is passed off as live availability. */
#ifndef EVENT_ENGINE_H
#define EVENT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "event_spec.h"
#include "event_svc.h"
#include "tiketi/v1/seatcore.pb-c.h"

uint32_t event_engine_shard(const struct event_svc *svc, uint64_t event_id);

/* CreateEvent on the owning shard (idempotent: retried on UNAVAILABLE). The
 * reply, when OK, is freed by the caller (protobuf_c_message_free_unpacked). */
grpc_status_code event_engine_create(struct event_svc *svc, uint64_t event_id, const struct event_spec *spec,
                                     const struct rpc_call_options *options, struct rpc_error *error);
grpc_status_code event_engine_get(struct event_svc *svc, uint64_t event_id, const struct rpc_call_options *options,
                                  Tiketi__V1__EventInfo **info, struct rpc_error *error);
grpc_status_code event_engine_availability(struct event_svc *svc, uint64_t event_id,
                                           const struct rpc_call_options *options, Tiketi__V1__Availability **out,
                                           struct rpc_error *error);
/* Free seats of many events (any shards). free_seats[i]: event ids[i];
 * known[i]=false when its shard does not have it. false: error filled. */
bool event_engine_free_seats(struct event_svc *svc, const uint64_t *ids, uint32_t count,
                             const struct rpc_call_options *options, uint32_t *free_seats, bool *known,
                             struct rpc_error *error);

/* Does the engine's event have the layout of spec (after an ALREADY_EXISTS)? */
bool event_engine_matches(const Tiketi__V1__EventInfo *info, uint32_t capacity, const struct event_section *sections,
                          uint32_t section_count);
/* An engine failure as the client should see it ("shard k (addr): ..."). */
void event_engine_error(struct event_svc *svc, uint64_t event_id, const struct rpc_error *engine,
                        struct rpc_error *error);

#endif
