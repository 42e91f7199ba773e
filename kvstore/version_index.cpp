#include "kvstore/version_index.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace squall::kvstore {

// One version in a key's array: 28 bytes (4-byte packing keeps the u64 fields without padding;
// reads of packed fields are by value, never by reference).
#pragma pack(push, 4)
struct VersionIndex::Slot {
  Version version;
  HlcTimestamp timestamp;
  Location location;
  std::uint32_t size_and_op;  // value bytes in the low 30 bits, op in the high 2

  Op op() const { return static_cast<Op>(size_and_op >> 30); }
  // For a put or delete: the value size. For a history-gap marker the low bits are flags.
  std::uint32_t value_bytes() const {
    return op() == Op::history_gap ? 0 : size_and_op & kMaxIndexedValueBytes;
  }
  // A marker whose record on disk is already a history-gap record (not a put or delete).
  bool gap_on_disk() const { return op() == Op::history_gap && (size_and_op & 1U) != 0; }
  void make_gap(bool on_disk) {
    size_and_op = (static_cast<std::uint32_t>(Op::history_gap) << 30) | (on_disk ? 1U : 0U);
  }
  Entry entry() const { return {version, timestamp, op(), value_bytes(), location}; }
  static Slot from(const Entry& entry) {
    SQUALL_ASSERT(entry.value_bytes <= kMaxIndexedValueBytes, "value of {} bytes",
                  entry.value_bytes);
    Slot slot{entry.version, entry.timestamp, entry.location,
              (static_cast<std::uint32_t>(entry.op) << 30) | entry.value_bytes};
    if (entry.op == Op::history_gap) slot.make_gap(true);  // read from disk as a gap record
    return slot;
  }
};
#pragma pack(pop)
static_assert(sizeof(VersionIndex::Slot) == 28, "a version must cost 28 bytes");

// A key and its version array in one heap block: [key bytes, padded to 4][slots...]. The
// entry itself is 24 bytes (with the set's node, one 64-byte allocation); one block per key
// saves an allocation header and keeps a key next to its versions. Elements of a std::set
// are const, so the array fields are `mutable`: they never take part in the ordering.
class VersionIndex::KeyEntry {
 public:
  explicit KeyEntry(std::string_view key)
      : key_size_(static_cast<std::uint32_t>(key.size())) {
    reallocate(1);
    std::memcpy(block_, key.data(), key.size());
  }
  ~KeyEntry() { std::free(block_); }
  KeyEntry(const KeyEntry&) = delete;
  KeyEntry& operator=(const KeyEntry&) = delete;

  std::string_view key() const { return {block_, key_size_}; }
  std::size_t size() const { return size_; }
  std::span<Slot> slots() const { return {data(), size_}; }
  bool has_gap() const { return size_ > 0 && data()[0].op() == Op::history_gap; }

  void push(const Slot& slot) const {
    // Growth by a quarter keeps the unused tail small (memory per version is a target).
    if (size_ == capacity_) reallocate(capacity_ + std::max(1U, capacity_ / 4));
    data()[size_++] = slot;
  }

  void erase_front(std::size_t count) const {
    SQUALL_ASSERT(count <= size_, "erasing {} of {} versions", count, size_);
    Slot* slots = data();
    std::memmove(static_cast<void*>(slots), slots + count, (size_ - count) * sizeof(Slot));
    size_ -= static_cast<std::uint32_t>(count);
    if (capacity_ > 4 && size_ < capacity_ / 2) reallocate(size_ + size_ / 4 + 1);
  }

 private:
  std::size_t slots_offset() const { return (key_size_ + 3U) & ~std::size_t{3}; }
  Slot* data() const { return reinterpret_cast<Slot*>(block_ + slots_offset()); }

  // Resizes the block to hold `capacity` slots after the key.
  void reallocate(std::uint32_t capacity) const {
    SQUALL_ASSERT(capacity >= size_ && capacity >= 1, "shrinking below the size");
    void* block = std::realloc(block_, slots_offset() + capacity * sizeof(Slot));
    SQUALL_ASSERT(block != nullptr, "out of memory for {} versions", capacity);
    block_ = static_cast<char*>(block);
    capacity_ = capacity;
  }

  mutable char* block_ = nullptr;
  std::uint32_t key_size_;
  mutable std::uint32_t size_ = 0;
  mutable std::uint32_t capacity_ = 0;
};
static_assert(sizeof(VersionIndex::KeyEntry) == 24, "a key entry must cost 24 bytes");

bool VersionIndex::KeyLess::operator()(const KeyEntry& a, const KeyEntry& b) const {
  return a.key() < b.key();
}
bool VersionIndex::KeyLess::operator()(const KeyEntry& a, std::string_view b) const {
  return a.key() < b;
}
bool VersionIndex::KeyLess::operator()(std::string_view a, const KeyEntry& b) const {
  return a < b.key();
}

VersionIndex::VersionIndex(RetentionPolicy policy) : policy_(policy) {}
VersionIndex::~VersionIndex() = default;

void VersionIndex::insert(std::string_view key, const Entry& entry, const ReleaseFn& release,
                          Version durable_through) {
  auto it = keys_.lower_bound(key);
  if (it == keys_.end() || it->key() != key) it = keys_.emplace_hint(it, key);
  const KeyEntry& target = *it;
  if (target.size() > 0) {
    const Slot last = target.slots().back();
    SQUALL_ASSERT(entry.version > last.version && entry.timestamp >= last.timestamp,
                  "version {}@{} of a key after {}@{}", entry.version, entry.timestamp,
                  last.version, last.timestamp);
  }
  if (entry.op == Op::history_gap) {
    for (const Slot& slot : target.slots()) release(key, slot.entry(), false);
    slot_count_ -= target.size();
    target.erase_front(target.size());
  }
  target.push(Slot::from(entry));
  ++slot_count_;
  if (entry.op != Op::history_gap) enforce_count(target, release, durable_through);
}

bool VersionIndex::below_floor(ReadPoint at) const {
  switch (at.kind) {
    case ReadPoint::Kind::latest: return false;
    case ReadPoint::Kind::version: return at.value < floor_version_;
    case ReadPoint::Kind::time: return at.value < floor_time_;
  }
  return false;
}

FindResult VersionIndex::before_history(const KeyEntry& entry, ReadPoint at) const {
  if (entry.has_gap() || below_floor(at)) return {Lookup::gone, {}};
  return {Lookup::absent, {}};
}

FindResult VersionIndex::find_in(const KeyEntry& entry, ReadPoint at) const {
  auto slots = entry.slots();
  std::size_t position = slots.size();
  if (at.kind == ReadPoint::Kind::version) {
    auto it = std::upper_bound(slots.begin(), slots.end(), at.value,
                               [](std::uint64_t v, const Slot& s) { return v < s.version; });
    position = static_cast<std::size_t>(it - slots.begin());
  } else if (at.kind == ReadPoint::Kind::time) {
    auto it = std::upper_bound(slots.begin(), slots.end(), at.value,
                               [](std::uint64_t t, const Slot& s) { return t < s.timestamp; });
    position = static_cast<std::size_t>(it - slots.begin());
  }
  if (position == 0) return before_history(entry, at);
  const Slot slot = slots[position - 1];
  if (slot.op() == Op::history_gap) return {Lookup::gone, {}};
  return {Lookup::found, slot.entry()};
}

FindResult VersionIndex::find(std::string_view key, ReadPoint at) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return {below_floor(at) ? Lookup::gone : Lookup::absent, {}};
  return find_in(*it, at);
}

HistoryPage VersionIndex::history(std::string_view key, std::optional<Version> before,
                                  std::size_t limit) const {
  SQUALL_ASSERT(limit >= 1, "history page of 0 versions");
  HistoryPage page;
  auto it = keys_.find(key);
  if (it == keys_.end()) return page;
  auto slots = it->slots();
  std::size_t end = slots.size();
  if (before) {
    auto bound = std::lower_bound(slots.begin(), slots.end(), *before,
                                  [](const Slot& s, std::uint64_t v) { return s.version < v; });
    end = static_cast<std::size_t>(bound - slots.begin());
  }
  std::size_t i = end;
  while (i > 0 && slots[i - 1].op() != Op::history_gap && page.versions.size() < limit) {
    page.versions.push_back(slots[i - 1].entry());
    --i;
  }
  bool older_real = i > 0 && slots[i - 1].op() != Op::history_gap;
  if (older_real && !page.versions.empty()) page.next = page.versions.back().version;
  page.truncated = i > 0 && !older_real;
  return page;
}

Result<ListPage> VersionIndex::list(std::string_view prefix, std::string_view start_after,
                                    std::size_t limit, ReadPoint at,
                                    std::size_t scan_limit) const {
  SQUALL_ASSERT(limit >= 1 && scan_limit >= 1, "list with limit {} scan {}", limit, scan_limit);
  if (below_floor(at)) return Status(Code::out_of_range, "listing older than retained history");
  auto it = start_after < prefix ? keys_.lower_bound(prefix) : keys_.upper_bound(start_after);
  ListPage page;
  std::size_t scanned = 0;
  for (; it != keys_.end() && it->key().starts_with(prefix); ++it) {
    FindResult found = find_in(*it, at);
    if (found.outcome == Lookup::gone) {
      return Status(Code::out_of_range,
                    fmt::format("history of key '{}' at that point was discarded", it->key()));
    }
    bool listed = found.outcome == Lookup::found && found.entry.op == Op::put;
    if (listed && page.items.size() == limit) {  // one more exists: the page is full
      page.next = page.items.back().key;
      return page;
    }
    if (listed) page.items.push_back({std::string(it->key()), found.entry});
    if (++scanned == scan_limit) {
      auto following = std::next(it);
      if (following != keys_.end() && following->key().starts_with(prefix)) {
        page.next = std::string(it->key());
      }
      return page;
    }
  }
  return page;
}

ChangeScanStep VersionIndex::scan_changes(std::string_view prefix, std::string_view from_key,
                                          std::size_t max_keys, Version after, Version upto,
                                          const ChangeFn& take) const {
  SQUALL_ASSERT(max_keys >= 1, "change scan of 0 keys");
  ChangeScanStep step;
  std::size_t visited = 0;
  for (auto it = keys_.lower_bound(std::max(prefix, from_key));
       it != keys_.end() && it->key().starts_with(prefix); ++it) {
    if (visited++ == max_keys) {
      step.next_key = std::string(it->key());
      return step;
    }
    auto slots = it->slots();
    if (it->has_gap()) step.discarded = std::max(step.discarded, Version{slots[0].version});
    auto first = std::upper_bound(slots.begin(), slots.end(), after,
                                  [](std::uint64_t v, const Slot& s) { return v < s.version; });
    for (; first != slots.end() && first->version <= upto; ++first) {
      if (first->op() == Op::history_gap) continue;  // only slot 0; the caller sees `discarded`
      if (!take(it->key(), first->entry())) break;
    }
  }
  return step;
}

}  // namespace squall::kvstore

namespace squall::kvstore {

namespace {

// Slots [0, result) hold versions up to `durable_through`.
std::size_t durable_prefix(std::span<const VersionIndex::Slot> slots, Version durable_through) {
  auto end = std::upper_bound(slots.begin(), slots.end(), durable_through,
                              [](std::uint64_t v, const VersionIndex::Slot& s) {
                                return v < s.version;
                              });
  return static_cast<std::size_t>(end - slots.begin());
}

}  // namespace

// Discards the `count` oldest real versions of `entry`: the newest of them becomes the key's
// history-gap marker (replacing an older marker).
void VersionIndex::discard_oldest(const KeyEntry& entry, std::size_t count,
                                  const ReleaseFn& release) {
  SQUALL_ASSERT(count >= 1, "discarding nothing");
  auto slots = entry.slots();
  std::size_t gap = entry.has_gap() ? 1 : 0;
  SQUALL_ASSERT(gap + count < slots.size(), "discarding the latest version of a key");
  for (std::size_t i = 0; i + 1 < gap + count; ++i) release(entry.key(), slots[i].entry(), false);
  release(entry.key(), slots[gap + count - 1].entry(), true);
  entry.erase_front(gap + count - 1);
  slot_count_ -= gap + count - 1;
  entry.slots()[0].make_gap(false);  // its record on disk is still the put or delete
}

void VersionIndex::enforce_count(const KeyEntry& entry, const ReleaseFn& release,
                                 Version durable_through) {
  if (policy_.keep_versions == 0) return;
  std::size_t gap = entry.has_gap() ? 1 : 0;
  std::size_t prefix = durable_prefix(entry.slots(), durable_through);
  std::size_t durable = prefix > gap ? prefix - gap : 0;
  if (durable > policy_.keep_versions) {
    discard_oldest(entry, durable - policy_.keep_versions, release);
  }
}

bool VersionIndex::enforce_age(const KeyEntry& entry, HlcTimestamp cutoff,
                               const ReleaseFn& release, Version durable_through,
                               std::size_t& discarded) {
  if (policy_.max_age_us == 0) return false;
  auto slots = entry.slots().first(durable_prefix(entry.slots(), durable_through));
  std::size_t gap = entry.has_gap() ? 1 : 0;
  if (slots.size() <= gap) return false;
  // Version i is needed by reads at times in [t(i), t(i+1)); none of those is at or after the
  // cutoff once t(i+1) <= cutoff. `newer` = first durable slot after `gap` with t > cutoff.
  auto after = std::upper_bound(slots.begin() + static_cast<std::ptrdiff_t>(gap), slots.end(),
                                cutoff,
                                [](std::uint64_t t, const Slot& s) { return t < s.timestamp; });
  std::size_t newer = static_cast<std::size_t>(after - slots.begin());
  std::size_t count = newer > gap + 1 ? newer - gap - 1 : 0;
  if (count > 0) {
    discard_oldest(entry, count, release);
    discarded += count;
  }
  const Slot latest = entry.slots().back();
  return latest.op() == Op::del && latest.timestamp <= cutoff &&
         latest.version <= durable_through;
}


void VersionIndex::drop_key(KeySet::iterator it, const ReleaseFn& release) {
  const Slot latest = it->slots().back();
  for (const Slot& slot : it->slots()) release(it->key(), slot.entry(), false);
  slot_count_ -= it->size();
  raise_floor(latest.version, latest.timestamp);
  keys_.erase(it);
}

SweepResult VersionIndex::sweep(HlcTimestamp cutoff, std::string_view from_key,
                                std::size_t max_keys, const ReleaseFn& release,
                                Version durable_through) {
  SweepResult result;
  auto it = keys_.lower_bound(from_key);
  while (it != keys_.end() && result.keys_visited < max_keys) {
    ++result.keys_visited;
    if (enforce_age(*it, cutoff, release, durable_through, result.versions_discarded)) {
      drop_key(it++, release);
      ++result.keys_dropped;
      continue;
    }
    std::size_t before = it->size();
    enforce_count(*it, release, durable_through);
    result.versions_discarded += before - it->size();
    ++it;
  }
  if (it != keys_.end()) result.next_key = std::string(it->key());
  return result;
}

bool VersionIndex::relocate(std::string_view key, Version version, Location from, Location to,
                            bool to_gap_record) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return false;
  auto slots = it->slots();
  auto found = std::lower_bound(slots.begin(), slots.end(), version,
                                [](const Slot& s, std::uint64_t v) { return s.version < v; });
  if (found == slots.end() || found->version != version || found->location != from) return false;
  found->location = to;
  if (found->op() == Op::history_gap && to_gap_record) found->make_gap(true);
  return true;
}

VersionIndex::GapState VersionIndex::gap_state(std::string_view key) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return GapState::key_absent;
  if (!it->has_gap()) return GapState::no_gap;
  return it->slots()[0].gap_on_disk() ? GapState::gap_on_disk : GapState::gap_in_memory;
}

std::optional<Entry> VersionIndex::exact(std::string_view key, Version version) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  auto slots = it->slots();
  auto found = std::lower_bound(slots.begin(), slots.end(), version,
                                [](const Slot& s, std::uint64_t v) { return s.version < v; });
  if (found == slots.end() || found->version != version) return std::nullopt;
  return found->entry();
}

void VersionIndex::drop_gap_only_keys(const ReleaseFn& release) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (it->size() == 1 && it->has_gap()) {
      drop_key(it++, release);
    } else {
      ++it;
    }
  }
}

void VersionIndex::raise_floor(Version version, HlcTimestamp timestamp) {
  floor_version_ = std::max(floor_version_, version);
  floor_time_ = std::max(floor_time_, timestamp);
}

}  // namespace squall::kvstore
