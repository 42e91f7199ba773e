// TopicIndex: hash maps of key and prefix topics plus the prefix lengths in use.
#include "kvstore/watch_index.hpp"

#include <algorithm>

#include "common/assert.hpp"

namespace squall::kvstore {

std::size_t TopicIndex::Hash::operator()(std::string_view text) const {
  std::size_t hash = kFnvOffset;
  for (char c : text) hash = fnv_step(hash, c);
  return hash;
}

void TopicIndex::add(const Topic& topic, TopicMember& member) {
  SQUALL_ASSERT(member.entry == nullptr, "member indexed twice");
  Map& map = topic.is_prefix() ? prefixes_ : keys_;
  auto [it, inserted] = map.try_emplace(topic.text);
  if (inserted && topic.is_prefix()) add_length(topic.text.size());
  TopicEntry& entry = it->second;
  member.entry = &entry;  // unordered_map nodes never move
  member.slot = entry.members.size();
  entry.members.push_back(&member);
  ++members_;
}

void TopicIndex::remove(const Topic& topic, TopicMember& member) {
  Map& map = topic.is_prefix() ? prefixes_ : keys_;
  auto it = map.find(topic.text);
  SQUALL_ASSERT(it != map.end() && member.entry == &it->second, "member not indexed under '{}'",
                topic.text);
  std::vector<TopicMember*>& members = it->second.members;
  SQUALL_ASSERT(member.slot < members.size() && members[member.slot] == &member,
                "index slot {} does not hold the member", member.slot);
  members[member.slot] = members.back();
  members[member.slot]->slot = member.slot;
  members.pop_back();
  member.entry = nullptr;
  member.slot = 0;
  --members_;
  if (members.empty()) {
    map.erase(it);
    if (topic.is_prefix()) remove_length(topic.text.size());
  }
}

void TopicIndex::add_length(std::size_t length) {
  if (prefix_topics_by_length_.size() <= length) prefix_topics_by_length_.resize(length + 1);
  if (prefix_topics_by_length_[length]++ == 0) {
    lengths_.insert(std::lower_bound(lengths_.begin(), lengths_.end(), length), length);
  }
}

void TopicIndex::remove_length(std::size_t length) {
  SQUALL_ASSERT(length < prefix_topics_by_length_.size() && prefix_topics_by_length_[length] > 0,
                "no prefix topic of length {}", length);
  if (--prefix_topics_by_length_[length] == 0) {
    lengths_.erase(std::lower_bound(lengths_.begin(), lengths_.end(), length));
  }
}

}  // namespace squall::kvstore
