// TopicIndex: which watchers match a key, found in time proportional to the key's length plus
// the number of matching topics — never to the number of watchers or topics.
//
// Key topics sit in one hash map. Prefix topics sit in a second hash map, and the index keeps
// the set of distinct prefix lengths in use: matching key K probes the prefix map once for
// each such length <= |K|, with the hash of K[0, length) taken from one running FNV-1a pass
// over K (so all probes together hash K once). The same pass ends with K's full hash for the
// key map. Members of one topic are kept in a vector; removal is O(1) (swap with the last).
//
// Not thread-safe: the hub guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvstore/watch_event.hpp"

namespace squall::kvstore {

struct TopicEntry;

// Something registered under a topic (the hub's watcher state derives from it). The index
// owns the two fields.
struct TopicMember {
  TopicEntry* entry = nullptr;  // null while not indexed
  std::size_t slot = 0;         // position in entry->members
};

struct TopicEntry {
  std::vector<TopicMember*> members;
};

class TopicIndex {
 public:
  TopicIndex() = default;
  TopicIndex(const TopicIndex&) = delete;
  TopicIndex& operator=(const TopicIndex&) = delete;

  // Registers `member` under `topic`. REQUIRES: member not indexed.
  void add(const Topic& topic, TopicMember& member);
  // Unregisters `member`. REQUIRES: member indexed under `topic`.
  void remove(const Topic& topic, TopicMember& member);

  // Calls visit(TopicEntry&) once per topic that matches `key` (prefixes from the shortest,
  // then the exact key). `visit` must not add or remove members.
  template <typename Visit>
  void for_each_match(std::string_view key, Visit&& visit);

  // Calls visit(TopicEntry&) for every topic. `visit` must not add or remove members.
  template <typename Visit>
  void for_each_entry(Visit&& visit) {
    for (auto& item : keys_) visit(item.second);
    for (auto& item : prefixes_) visit(item.second);
  }

  std::size_t topic_count() const { return keys_.size() + prefixes_.size(); }
  std::size_t member_count() const { return members_; }

 private:
  // A probe: a key (or key prefix) with its hash already computed.
  struct Probe {
    std::string_view text;
    std::size_t hash;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const;
    std::size_t operator()(const std::string& text) const {
      return (*this)(std::string_view(text));
    }
    std::size_t operator()(const Probe& probe) const { return probe.hash; }
  };
  struct Equal {
    using is_transparent = void;
    static std::string_view view(std::string_view text) { return text; }
    static std::string_view view(const Probe& probe) { return probe.text; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return view(a) == view(b);
    }
  };
  using Map = std::unordered_map<std::string, TopicEntry, Hash, Equal>;

  static constexpr std::size_t kFnvOffset = 14695981039346656037ULL;
  static constexpr std::size_t kFnvPrime = 1099511628211ULL;
  static std::size_t fnv_step(std::size_t hash, char c) {
    return (hash ^ static_cast<unsigned char>(c)) * kFnvPrime;
  }

  void add_length(std::size_t length);
  void remove_length(std::size_t length);

  Map keys_;
  Map prefixes_;
  std::vector<std::uint32_t> prefix_topics_by_length_;  // length -> prefix topics of it
  std::vector<std::size_t> lengths_;                    // lengths in use, ascending
  std::size_t members_ = 0;
};

template <typename Visit>
void TopicIndex::for_each_match(std::string_view key, Visit&& visit) {
  std::size_t hash = kFnvOffset;
  std::size_t hashed = 0;  // bytes of `key` folded into `hash`
  for (std::size_t length : lengths_) {
    if (length > key.size()) break;
    for (; hashed < length; ++hashed) hash = fnv_step(hash, key[hashed]);
    auto it = prefixes_.find(Probe{key.substr(0, length), hash});
    if (it != prefixes_.end()) visit(it->second);
  }
  if (keys_.empty()) return;
  for (; hashed < key.size(); ++hashed) hash = fnv_step(hash, key[hashed]);
  auto it = keys_.find(Probe{key, hash});
  if (it != keys_.end()) visit(it->second);
}

}  // namespace squall::kvstore
