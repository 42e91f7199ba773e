// Helpers for the KV state machine tests: building updates, feeding them, and dumping state.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvstore/kv_state_machine.hpp"
#include "test/kvstore/test_util.hpp"

namespace squall::kvstore::testing {

inline Bytes put_payload(std::string_view key, std::string_view value,
                         KvCondition condition = KvCondition::none, Version expected = 0,
                         RequestId request = {NodeId{1}, 0}) {
  KvUpdate update{KvOp::put, condition, expected, request, key, as_bytes(value)};
  return encode_update(update, KvCodecLimits{});
}

inline Bytes delete_payload(std::string_view key, KvCondition condition = KvCondition::none,
                            Version expected = 0, RequestId request = {NodeId{1}, 0}) {
  KvUpdate update{KvOp::del, condition, expected, request, key, {}};
  return encode_update(update, KvCodecLimits{});
}

// Folders for persistent pools, one per pool index, under a temp folder.
class PoolDirectories {
 public:
  explicit PoolDirectories(std::string root) : root_(std::move(root)) {}
  DirectoryProvider provider() {
    return [this](std::size_t index, const config::PoolConfig&) -> Result<Directory*> {
      auto& slot = directories_[index];
      if (!slot) slot = posix_dir(root_ + "/pool" + std::to_string(index));
      return slot.get();
    };
  }

 private:
  std::string root_;
  std::map<std::size_t, std::unique_ptr<Directory>> directories_;
};

// Feeds updates with consecutive versions (view 1) and timestamps, collecting results.
class Feeder {
 public:
  explicit Feeder(KvStateMachine& machine, Version first = (Version{1} << 32) | 1)
      : machine_(machine), next_version_(first) {
    machine_.on_result = [this](const KvResult& result) { results.push_back(result); };
  }
  // Applies `payload`; returns its version.
  Version apply(const Bytes& payload, NodeId sender = NodeId{1}) {
    Version version = next_version_++;
    core::DeliveredUpdate update{version, hlc_make(1000 + version % 100000, 0), sender, 0,
                                 payload};
    REQUIRE(machine_.apply(update).is_ok());
    return version;
  }
  const KvResult& last() const { return results.back(); }
  std::vector<KvResult> results;

 private:
  KvStateMachine& machine_;
  Version next_version_;
};

// Everything readable about `keys`: each key's history (version, op) and latest value.
inline std::string dump(const KvStateMachine& machine, const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& key : keys) {
    const Store* store = machine.store_for_key(key);
    if (store == nullptr) continue;
    out += key + ":";
    auto history = store->history(key, std::nullopt, 1000);
    REQUIRE(history.is_ok());
    for (const Entry& entry : history->versions) {
      out += fmt::format(" {}/{}/{}", entry.version, static_cast<int>(entry.op), entry.timestamp);
    }
    auto read = store->get(key);
    out += read ? " = " + text_of(read->value) : " absent";
    out += "\n";
  }
  return out;
}

// The latest value of every existing key of every stored pool.
inline std::map<std::string, std::pair<Version, std::string>> latest_state(
    const KvStateMachine& machine) {
  std::map<std::string, std::pair<Version, std::string>> state;
  for (std::size_t pool = 0; pool < machine.pools().size(); ++pool) {
    const Store* store = machine.store(pool);
    if (store == nullptr) continue;
    std::string after;
    for (;;) {
      auto page = store->list("", after, 1000);
      REQUIRE(page.is_ok());
      for (const ListItem& item : page->items) {
        auto read = store->get(item.key);
        REQUIRE(read.is_ok());
        state[item.key] = {item.entry.version, text_of(read->value)};
      }
      if (!page->next) break;
      after = *page->next;
    }
  }
  return state;
}

}  // namespace squall::kvstore::testing
