/* fuzz_wal_record.c — libFuzzer target: one WAL record and every engine and
 * queue record decoder on bytes from disk. None may crash, read out of bounds
 * or accept what it cannot represent; whatever decodes must encode back to the
 * same bytes (for the engine records with a canonical encoding). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "queue.h"
#include "record.h"
#include "wal_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wal_record_view view;
    uint64_t commit_start;
    if (size >= 8) {
        uint64_t lsn = 0;
        memcpy(&lsn, data, 8);
        (void)wal_record_check(data + 8, size - 8, lsn & ~UINT64_C(7), &view, &commit_start);
    }
    uint32_t len = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    struct rec_hold hold;
    if (rec_decode_hold(data, len, &hold) == TK_OK) {
        uint8_t back[REC_PAYLOAD_BYTES_MAX];
        struct tk_buf buf;
        tk_buf_init(&buf, back, sizeof(back));
        rec_encode_hold(&buf, &hold);
        if (buf.len != size || memcmp(back, data, size) != 0)
            __builtin_trap(); /* a decoded record must encode back to itself */
    }
    struct rec_hold_end end;
    (void)rec_decode_hold_end(data, len, &end);
    struct rec_return ret;
    (void)rec_decode_return(data, len, &ret);
    struct rec_event_state state;
    (void)rec_decode_event_state(data, len, &state);
    struct sc_event_spec spec;
    (void)rec_decode_event_create(data, len, &spec);
    uint64_t event_id;
    (void)queue_record_event_id(data, len, &event_id);
    return 0;
}
