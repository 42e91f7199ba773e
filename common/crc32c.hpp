// CRC32C (Castagnoli), the checksum of every record Squall writes to disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace squall {

// Extends `crc` (0 to start) over `data`. Uses SSE4.2 when the CPU has it.
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data);

inline std::uint32_t crc32c(std::span<const std::byte> data) { return crc32c_extend(0, data); }

}  // namespace squall
