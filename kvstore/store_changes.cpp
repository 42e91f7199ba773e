// Store: the writes under a prefix in version order (changes), the value of one version, and
// the start of a store's history (docs/storage.md, "Changes under a prefix").
#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "kvstore/store.hpp"

namespace squall::kvstore {

Version Store::scan_changes(std::string_view prefix, Version after, Version upto,
                            const ChangeFn& take) const {
  Version horizon = 0;
  std::string from(prefix);
  for (;;) {
    ChangeScanStep step;
    {
      std::shared_lock lock(index_mutex_);
      step = index_.scan_changes(prefix, from, options_.change_scan_keys, after, upto, take);
      // Read with every step: a key dropped while the scan ran raises the floor.
      horizon = std::max({horizon, step.discarded, index_.floor_version()});
    }
    if (!step.next_key) return horizon;
    from = std::move(*step.next_key);
  }
}

// Between lock holds the index may change under the scan, which stays exact: writes are
// above `upto`; a discard of versions in the range is either seen (a gap marker or the floor
// above `after`) or hits versions already taken, whose values then read as out_of_range.
Result<ChangePage> Store::changes(std::string_view prefix, Version after, Version upto,
                                  std::size_t max_items) const {
  if (after >= upto || max_items == 0 || max_items > options_.max_page_items) {
    return invalid_argument(fmt::format("changes in ({}, {}] limit {}: need after < upto and "
                                        "a limit in [1, {}]", after, upto, max_items,
                                        options_.max_page_items));
  }
  // A max-heap by version holding the `max_items` smallest versions offered so far.
  auto newer = [](const Change& a, const Change& b) { return a.entry.version < b.entry.version; };
  std::vector<Change> heap;
  heap.reserve(max_items);
  auto take = [&](std::string_view key, const Entry& entry) {
    if (heap.size() == max_items) {
      // The key's later versions are larger still: none of them can enter either.
      if (entry.version >= heap.front().entry.version) return false;
      std::pop_heap(heap.begin(), heap.end(), newer);
      heap.pop_back();
    }
    heap.push_back(Change{std::string(key), entry});
    std::push_heap(heap.begin(), heap.end(), newer);
    return true;
  };
  Version horizon = scan_changes(prefix, after, upto, take);
  if (horizon > after) {
    return Status(Code::out_of_range,
                  fmt::format("writes under '{}' above version {} were discarded (up to {})",
                              prefix, after, horizon));
  }
  std::sort_heap(heap.begin(), heap.end(), newer);
  ChangePage page;
  page.through = heap.size() == max_items ? heap.back().entry.version : upto;
  page.changes = std::move(heap);
  SQUALL_ASSERT(page.through > after && page.through <= upto, "changes through {} of ({}, {}]",
                page.through, after, upto);
  return page;
}

Version Store::changes_horizon(std::string_view prefix) const {
  constexpr Version kNone = ~Version{0};
  return scan_changes(prefix, kNone, kNone, [](std::string_view, const Entry&) { return false; });
}

Result<Bytes> Store::read_version(std::string_view key, Version version) const {
  Result<ReadResult> read = get(key, ReadPoint::at_version(version));
  if (!read) {
    if (read.status().code() != Code::not_found) return read.status();
    FindResult found = lookup(key, ReadPoint::at_version(version));
    if (found.outcome == Lookup::found && found.entry.version == version) {
      return invalid_argument(fmt::format("version {} of '{}' is a tombstone", version, key));
    }
  } else if (read->entry.version == version) {
    return std::move(read->value);
  }
  return Status(Code::out_of_range,
                fmt::format("version {} of '{}' is no longer retained", version, key));
}

Status Store::start_history_after(Version version, HlcTimestamp timestamp) {
  std::lock_guard maintenance(maintenance_mutex_);
  {
    std::unique_lock lock(index_mutex_);
    index_.raise_floor(version, timestamp);
  }
  return log_ ? persist_floor() : Status::ok();
}

}  // namespace squall::kvstore
