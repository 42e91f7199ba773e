// Version: the position of an update in its shard's history.
//
// version = (view id << 32) | sequence-within-view. Versions of one shard strictly increase
// across views because view ids do. Every replica computes the same version for the same
// update. Stored on disk and sent to clients as a plain u64: never change the packing.
#pragma once

#include <cstdint>

#include "common/ids.hpp"

namespace squall {

using Version = std::uint64_t;

constexpr Version make_version(ViewId view, std::uint32_t sequence) {
  return (static_cast<Version>(view.value) << 32) | sequence;
}
constexpr ViewId version_view(Version version) {
  return ViewId{static_cast<std::uint32_t>(version >> 32)};
}
constexpr std::uint32_t version_sequence(Version version) {
  return static_cast<std::uint32_t>(version & 0xffff'ffffULL);
}

}  // namespace squall
