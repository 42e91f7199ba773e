#include "core/sequencer.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace squall::core {

Sequencer::Sequencer(std::size_t senders, ViewId view, HlcTimestamp last_timestamp,
                     std::uint64_t max_data_per_sender, std::size_t max_early_bodies)
    : view_(view),
      senders_(senders),
      max_data_per_sender_(max_data_per_sender),
      max_early_bodies_(max_early_bodies),
      last_timestamp_(last_timestamp) {
  SQUALL_ASSERT(senders > 0, "a shard has at least one sender");
  SQUALL_ASSERT(max_data_per_sender <= kMaxDataPerView / senders,
                "{} senders x {} messages overflow the view's versions", senders,
                max_data_per_sender);
}

Status Sequencer::check_data(std::size_t sender, std::uint64_t count) const {
  const SenderState& state = senders_.at(sender);
  if (count > max_data_per_sender_ - std::min(state.data_count, max_data_per_sender_)) {
    return corruption(fmt::format("sender {} sent more than its {} messages of the view", sender,
                                  max_data_per_sender_));
  }
  if (state.announced + 1 > kMaxSlots) {
    return corruption(fmt::format("sender {}'s stream passed {} slots", sender, kMaxSlots));
  }
  return Status::ok();
}

Version Sequencer::last_version() const {
  if (delivered_data_ == 0) return 0;
  return make_version(view_, static_cast<std::uint32_t>(delivered_data_));
}

std::size_t Sequencer::pending_entries() const {
  std::size_t count = 0;
  for (const SenderState& sender : senders_) count += sender.entries.size();
  return count;
}

void Sequencer::append(std::size_t sender, Entry entry) {
  SenderState& state = senders_.at(sender);
  entry.first_slot = state.announced;
  state.announced += entry.slots;
  pending_bytes_ += entry.payload.size();
  state.entries.push_back(std::move(entry));
  refresh_received(sender);
}

void Sequencer::refresh_received(std::size_t sender) {
  SenderState& state = senders_[sender];
  std::uint64_t received = state.announced;
  for (const Entry& entry : state.entries) {
    if (!entry.complete) {
      received = entry.first_slot;
      break;
    }
  }
  SQUALL_ASSERT(received >= state.received, "received slots of sender {} went back", sender);
  state.received = received;
}

Status Sequencer::add_data(std::size_t sender, HlcTimestamp timestamp,
                           std::span<const std::byte> payload) {
  SQUALL_TRY(check_data(sender));
  Entry entry;
  entry.kind = MessageKind::data;
  entry.timestamp = timestamp;
  entry.sender_index = senders_.at(sender).data_count++;
  entry.payload.assign(payload.begin(), payload.end());
  append(sender, std::move(entry));
  return Status::ok();
}

Status Sequencer::add_packed(std::size_t sender, HlcTimestamp timestamp,
                             std::span<const std::byte> records, std::uint32_t count) {
  SQUALL_ASSERT(count >= 2, "a packed slot of {} updates", count);
  SQUALL_TRY(check_data(sender, count));
  Entry entry;
  entry.kind = MessageKind::packed;
  entry.timestamp = timestamp;
  entry.sender_index = senders_.at(sender).data_count;
  senders_[sender].data_count += count;
  entry.count = count;
  entry.payload.assign(records.begin(), records.end());
  append(sender, std::move(entry));
  return Status::ok();
}

Status Sequencer::add_nulls(std::size_t sender, std::uint64_t count) {
  std::uint64_t announced = senders_.at(sender).announced;
  if (count == 0 || count > kMaxSlots - announced) {
    return corruption(fmt::format("sender {}: null batch of {} slots after {}", sender, count,
                                  announced));
  }
  Entry entry;
  entry.kind = MessageKind::nulls;
  entry.slots = count;
  append(sender, std::move(entry));
  return Status::ok();
}

Status Sequencer::add_large(std::size_t sender, HlcTimestamp timestamp,
                            std::uint64_t rdmc_index, std::uint64_t size_bytes) {
  SQUALL_TRY(check_data(sender));
  auto early = early_bodies_.find({sender, rdmc_index});
  if (early != early_bodies_.end() && early->second.size() != size_bytes) {
    return corruption(fmt::format("sender {}: large message {} of {} bytes, described as {}",
                                  sender, rdmc_index, early->second.size(), size_bytes));
  }
  Entry entry;
  entry.kind = MessageKind::large;
  entry.timestamp = timestamp;
  entry.sender_index = senders_.at(sender).data_count++;
  entry.rdmc_index = rdmc_index;
  entry.size_bytes = size_bytes;
  entry.complete = false;
  if (early != early_bodies_.end()) {
    entry.payload = std::move(early->second);
    entry.complete = true;
    early_bodies_.erase(early);
  }
  append(sender, std::move(entry));
  return Status::ok();
}

Status Sequencer::complete_large(std::size_t sender, std::uint64_t rdmc_index,
                                 std::span<const std::byte> payload) {
  SenderState& state = senders_.at(sender);
  for (Entry& entry : state.entries) {
    if (entry.kind != MessageKind::large || entry.rdmc_index != rdmc_index) continue;
    if (entry.complete || entry.size_bytes != payload.size()) {
      return corruption(fmt::format("large message {} of sender {}: {} bytes for a descriptor "
                                    "of {}{}", rdmc_index, sender, payload.size(),
                                    entry.size_bytes, entry.complete ? " (again)" : ""));
    }
    entry.payload.assign(payload.begin(), payload.end());
    entry.complete = true;
    pending_bytes_ += payload.size();
    refresh_received(sender);
    return Status::ok();
  }
  if (early_bodies_.size() >= max_early_bodies_) {
    return {Code::would_block, "too many large messages wait for their descriptors"};
  }
  auto [it, inserted] = early_bodies_.try_emplace({sender, rdmc_index},
                                                  Bytes(payload.begin(), payload.end()));
  if (!inserted) {
    return corruption(fmt::format("large message {} of sender {} arrived twice", rdmc_index,
                                  sender));
  }
  return Status::ok();
}

std::uint64_t Sequencer::slots_needed(std::size_t me) const {
  // Slot k of `me` has sequence k·N + me. Sender t's last announced slot (announced_t - 1)
  // has sequence (announced_t - 1)·N + t, which needs every slot of ours below it:
  // announced_t of them if t > me, announced_t - 1 if t < me.
  std::uint64_t needed = 0;
  for (std::size_t t = 0; t < senders_.size(); ++t) {
    if (t == me || senders_[t].announced == 0) continue;
    std::uint64_t level = t > me ? senders_[t].announced : senders_[t].announced - 1;
    needed = std::max(needed, level);
  }
  return needed;
}

const Sequencer::Entry* Sequencer::first_message(std::size_t sender) const {
  for (const Entry& entry : senders_[sender].entries) {
    if (entry.kind != MessageKind::nulls) return &entry;
  }
  return nullptr;
}

std::size_t Sequencer::next_sender(
    const std::function<std::uint64_t(std::size_t)>& limit) const {
  std::size_t best = senders_.size();
  std::uint64_t best_sequence = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t sender = 0; sender < senders_.size(); ++sender) {
    const Entry* entry = first_message(sender);
    if (entry == nullptr || entry->first_slot >= limit(sender)) continue;
    std::uint64_t sequence = sequence_of(sender, entry->first_slot);
    if (sequence < best_sequence) {
      best_sequence = sequence;
      best = sender;
    }
  }
  return best;
}

bool Sequencer::deliver_one(SequencedDelivery& delivery, const DeliverFn& deliver) {
  SQUALL_ASSERT(delivered_data_ < kMaxDataPerView, "view {} ran out of versions", view_);
  ++delivered_data_;
  last_timestamp_ = std::max(last_timestamp_ + 1, delivery.carried_timestamp);
  delivery.version = last_version();
  delivery.timestamp = last_timestamp_;
  return deliver(delivery);
}

bool Sequencer::deliver_front(std::size_t sender, const DeliverFn& deliver,
                              std::size_t& delivered) {
  std::deque<Entry>& entries = senders_[sender].entries;
  while (entries.front().kind == MessageKind::nulls) entries.pop_front();
  Entry entry = std::move(entries.front());
  entries.pop_front();
  SQUALL_ASSERT(entry.complete, "delivering an incomplete message of sender {}", sender);
  std::uint64_t sequence = sequence_of(sender, entry.first_slot);
  SQUALL_ASSERT(sequence >= next_sequence_, "sequence {} delivered after {}", sequence,
                next_sequence_);
  next_sequence_ = sequence + 1;
  pending_bytes_ -= entry.payload.size();
  SequencedDelivery delivery{.sequence = sequence,
                             .sender = sender,
                             .sender_index = entry.sender_index,
                             .carried_timestamp = entry.timestamp,
                             .payload = entry.payload};
  if (entry.kind != MessageKind::packed) {
    ++delivered;
    return deliver_one(delivery, deliver);
  }
  // A stopped delivery leaves the rest of the slot undelivered: the group is wedged then.
  bool go_on = true;
  for_each_packed(entry.payload, entry.count, [&](std::span<const std::byte> payload) {
    if (!go_on) return;
    delivery.payload = payload;
    ++delivered;
    go_on = deliver_one(delivery, deliver);
    ++delivery.sender_index;
  });
  return go_on;
}

void Sequencer::drop_skipped() {
  // Entries all of whose sequences lie below next_sequence_ are nulls already skipped.
  for (std::size_t sender = 0; sender < senders_.size(); ++sender) {
    std::deque<Entry>& entries = senders_[sender].entries;
    while (!entries.empty() &&
           sequence_of(sender, entries.front().first_slot + entries.front().slots - 1) <
               next_sequence_) {
      SQUALL_ASSERT(entries.front().kind == MessageKind::nulls,
                    "a message of sender {} was skipped", sender);
      entries.pop_front();
    }
  }
}

std::size_t Sequencer::deliver_stable(std::span<const std::uint64_t> stable,
                                      const DeliverFn& deliver) {
  SQUALL_ASSERT(stable.size() == senders_.size(), "stable counts for {} senders, not {}",
                stable.size(), senders_.size());
  // The first sequence not known to be stable: sender s's slot stable[s].
  std::uint64_t frontier = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t sender = 0; sender < senders_.size(); ++sender) {
    SQUALL_ASSERT(stable[sender] <= senders_[sender].received,
                  "sender {}: {} slots stable but {} received here", sender, stable[sender],
                  senders_[sender].received);
    frontier = std::min(frontier, sequence_of(sender, stable[sender]));
  }
  // Slot k of s lies below the frontier iff k·N + s < frontier.
  auto limit = [&](std::size_t sender) {
    return frontier <= sender ? 0 : (frontier - sender + senders_.size() - 1) / senders_.size();
  };
  std::size_t delivered = 0;
  for (std::size_t sender = next_sender(limit); sender < senders_.size();
       sender = next_sender(limit)) {
    // A stopped delivery leaves the rest undecided: the frontier is not taken.
    if (!deliver_front(sender, deliver, delivered)) return delivered;
  }
  // Every sequence below the frontier is now delivered or a null.
  next_sequence_ = std::max(next_sequence_, frontier);
  drop_skipped();
  return delivered;
}

Result<std::size_t> Sequencer::deliver_trim(std::span<const std::uint64_t> trim,
                                            const DeliverFn& deliver) {
  SQUALL_ASSERT(trim.size() == senders_.size(), "trim for {} senders, not {}", trim.size(),
                senders_.size());
  for (std::size_t sender = 0; sender < senders_.size(); ++sender) {
    if (trim[sender] > senders_[sender].received) {
      return Status(Code::out_of_range,
                    fmt::format("trim asks for {} slots of sender {}; {} held here",
                                trim[sender], sender, senders_[sender].received));
    }
  }
  auto limit = [&](std::size_t sender) { return trim[sender]; };
  std::size_t delivered = 0;
  for (std::size_t sender = next_sender(limit); sender < senders_.size();
       sender = next_sender(limit)) {
    if (!deliver_front(sender, deliver, delivered)) break;
  }
  return delivered;
}

}  // namespace squall::core
