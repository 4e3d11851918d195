/* tk_codec.c — CRC32C through ISA-L (hardware-accelerated where the CPU has it). */
#include "tk_codec.h"

#include <isa-l/crc.h>

/* tk_crc32c(0, ...) starts a checksum; pass the previous result to continue one. */
uint32_t tk_crc32c(uint32_t crc, const void *data, size_t len)
{
    TK_ASSERT(data != NULL || len == 0);
    TK_ASSERT(len <= INT32_MAX);
    return ~crc32_iscsi((unsigned char *)data, (int)len, ~crc);
}
