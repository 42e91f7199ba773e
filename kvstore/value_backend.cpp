#include "kvstore/value_backend.hpp"

namespace squall::kvstore {

void LogBackend::release(Location location, std::uint64_t freed_bytes, Release /*what*/) {
  log_.release(location, freed_bytes);
}

Status MemoryBackend::append(std::span<const RecordFields> records,
                             std::span<Location> locations) {
  SQUALL_ASSERT(records.size() == locations.size(), "{} records, {} locations", records.size(),
                locations.size());
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < records.size(); ++i) {
    Location slot = 0;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = values_.size();
      values_.emplace_back();
    }
    values_[slot].assign(records[i].value.begin(), records[i].value.end());
    value_bytes_ += records[i].value.size();
    locations[i] = slot;
  }
  if (!records.empty()) last_version_ = records.back().version;
  return Status::ok();
}

Result<Version> MemoryBackend::sync() { return durable_version(); }

Version MemoryBackend::durable_version() const {
  std::lock_guard lock(mutex_);
  return last_version_;
}

Status MemoryBackend::read(const RecordRef& ref, Bytes& value) const {
  std::lock_guard lock(mutex_);
  SQUALL_ASSERT(ref.location < values_.size(), "value slot {} out of range", ref.location);
  const Bytes& stored = values_[ref.location];
  // The Store reads volatile values under its index lock, so a slot cannot be released and
  // reused between the lookup and this read.
  SQUALL_ASSERT(stored.size() == ref.value_bytes, "value slot {} holds {} bytes, not {}",
                ref.location, stored.size(), ref.value_bytes);
  value.assign(stored.begin(), stored.end());
  return Status::ok();
}

void MemoryBackend::release(Location location, std::uint64_t /*freed_bytes*/, Release what) {
  if (what == Release::gap_record) return;  // its value went with Release::value_only
  std::lock_guard lock(mutex_);
  SQUALL_ASSERT(location < values_.size(), "value slot {} out of range", location);
  value_bytes_ -= values_[location].size();
  Bytes().swap(values_[location]);
  free_slots_.push_back(location);
}

std::uint64_t MemoryBackend::value_bytes() const {
  std::lock_guard lock(mutex_);
  return value_bytes_;
}

}  // namespace squall::kvstore
