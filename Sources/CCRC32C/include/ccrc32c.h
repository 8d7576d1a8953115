#ifndef VANTAGE_CCRC32C_H
#define VANTAGE_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, the polynomial of iSCSI and ext4 metadata) of `length` bytes, continuing `crc` (0 to
/// start), as zlib's `crc32` continues its CRC-32. By the processor's CRC instruction where there is one (x86-64
/// with SSE4.2, ARMv8 with the CRC extension), else a table.
uint32_t vantage_crc32c(uint32_t crc, const void *data, size_t length);

/// The same value by the table alone (tests compare the instruction with it).
uint32_t vantage_crc32c_portable(uint32_t crc, const void *data, size_t length);

#endif
