/* bench_workload.c — the events the engine mixes run on. What the simulated
 * buyers ask for (the picks) is shared with rpc-bench and the Redis baseline:
 * perf/common/common_workload.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void workload_event_spec(const struct bench_layout *layout, uint64_t event_id, struct sc_event_spec *out)
{
    memset(out, 0, sizeof(*out));
    out->event_id = event_id;
    out->section_count = 1;
    snprintf(out->sections[0].name, sizeof(out->sections[0].name), "floor");
    out->sections[0].rows = layout->rows;
    out->sections[0].seats_per_row = layout->seats_per_row;
    out->sections[0].price_cents = 4500;
    /* Engine defaults for the rest (5-minute holds, 10 seats per user, holds_max
     * half the capacity): what a production event would be created with. */
}

enum tk_status workload_create_events(struct sc_engine *engine, const struct bench_layout *layout, char *err,
                                      size_t err_len)
{
    struct sc_event_spec spec;
    for (uint32_t i = 0; i < layout->event_count; i++) {
        workload_event_spec(layout, layout->first_event_id + i, &spec);
        uint64_t lsn = 0;
        enum tk_status status = sc_event_create(engine, &spec, &lsn);
        if (status != TK_OK) {
            snprintf(err, err_len, "sc_event_create(%llu): %s", (unsigned long long)spec.event_id,
                     tk_status_message(status));
            return status;
        }
        status = sc_engine_wait_durable(engine, lsn); /* setup, not measured */
        if (status != TK_OK) {
            snprintf(err, err_len, "waiting for event creation: %s", tk_status_message(status));
            return status;
        }
    }
    return TK_OK;
}
