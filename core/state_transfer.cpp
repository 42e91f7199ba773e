#include "core/state_transfer.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"

namespace squall::core {

namespace {

// Sessions a source keeps at once (one per receiver and shard).
constexpr std::size_t kMaxTransferSessions = 1024;

bool get_flag(ByteReader& in, bool& flag) {
  std::uint8_t value = 0;
  std::uint8_t reserved = 0;
  if (!in.get(value) || value > 1) return false;
  for (int i = 0; i < 7; ++i) {
    if (!in.get(reserved) || reserved != 0) return false;
  }
  flag = value != 0;
  return true;
}

void put_flag(ByteWriter& out, bool flag) {
  out.put(static_cast<std::uint8_t>(flag ? 1 : 0));
  for (int i = 0; i < 7; ++i) out.put(std::uint8_t{0});
}

bool get_body(ByteReader& in, TransferMessage& message) {
  switch (message.kind) {
    case TransferKind::start:
    case TransferKind::log_request:
    case TransferKind::chunk_request:
      return in.get(message.value);
    case TransferKind::plan:
      return get_flag(in, message.checkpoint) && in.get(message.view_start) &&
             in.get(message.last_timestamp) && in.get(message.persisted_floor) &&
             in.get(message.blob_bytes) && in.get(message.checkpoint_version) &&
             in.get(message.checkpoint_timestamp);
    case TransferKind::batch:
      return in.get(message.blob_bytes) && get_flag(in, message.more);
    case TransferKind::chunk: {
      std::span<const std::byte> bytes;
      if (!in.get(message.value) || in.remaining() == 0 ||
          !in.get_bytes(in.remaining(), bytes)) {
        return false;
      }
      message.bytes.assign(bytes.begin(), bytes.end());
      return true;
    }
    case TransferKind::not_ready:
      return true;
  }
  return false;
}

// Whether `applied` (a receiver's last version) names an update of the source's history, so
// that the receiver's state is a prefix of it and a suffix suffices. A replica that restarts
// with updates the group never kept (delivered by a view it alone finished, then lost by a
// total restart that continued from shorter logs) has a version the history lacks: it gets a
// checkpoint, which replaces its state. Unknown (the log no longer reaches back): no.
bool in_history(StateMachine& machine, Version applied) {
  if (applied == 0) return true;
  Result<std::vector<LoggedUpdate>> at = machine.read_log(applied - 1, 1);
  return at && !at->empty() && at->front().version == applied;
}

}  // namespace

bool is_transfer_message(std::span<const std::byte> message) {
  return !message.empty() && static_cast<std::uint8_t>(message[0]) == kStateTransferTag;
}

Bytes encode_transfer(const TransferMessage& message) {
  Bytes out;
  ByteWriter writer(out);
  writer.put(kStateTransferTag);
  writer.put(static_cast<std::uint8_t>(message.kind));
  writer.put(std::uint16_t{0});
  writer.put(message.shard.value);
  writer.put(message.view.value);
  writer.put(std::uint32_t{0});
  switch (message.kind) {
    case TransferKind::start:
    case TransferKind::log_request:
    case TransferKind::chunk_request:
      writer.put(message.value);
      break;
    case TransferKind::plan:
      put_flag(writer, message.checkpoint);
      writer.put(message.view_start);
      writer.put(message.last_timestamp);
      writer.put(message.persisted_floor);
      writer.put(message.blob_bytes);
      writer.put(message.checkpoint_version);
      writer.put(message.checkpoint_timestamp);
      break;
    case TransferKind::batch:
      writer.put(message.blob_bytes);
      put_flag(writer, message.more);
      break;
    case TransferKind::chunk:
      SQUALL_ASSERT(!message.bytes.empty(), "an empty chunk");
      writer.put(message.value);
      writer.put_bytes(message.bytes);
      break;
    case TransferKind::not_ready:
      break;
  }
  return out;
}

Result<TransferMessage> decode_transfer(std::span<const std::byte> bytes) {
  ByteReader in(bytes);
  std::uint8_t tag = 0;
  std::uint8_t kind = 0;
  std::uint16_t reserved = 0;
  std::uint32_t reserved_word = 0;
  TransferMessage message;
  if (!in.get(tag) || !in.get(kind) || !in.get(reserved) || !in.get(message.shard.value) ||
      !in.get(message.view.value) || !in.get(reserved_word)) {
    return corruption("state transfer: truncated header");
  }
  if (tag != kStateTransferTag || reserved != 0 || reserved_word != 0 || kind < 1 ||
      kind > static_cast<std::uint8_t>(TransferKind::not_ready)) {
    return corruption("state transfer: bad tag, kind or reserved bytes");
  }
  message.kind = static_cast<TransferKind>(kind);
  if (!get_body(in, message) || in.remaining() != 0) {
    return corruption(fmt::format("state transfer: malformed body of kind {}", kind));
  }
  return message;
}

Bytes encode_update_batch(std::span<const LoggedUpdate> updates) {
  Bytes out;
  ByteWriter writer(out);
  writer.put(static_cast<std::uint32_t>(updates.size()));
  for (const LoggedUpdate& update : updates) {
    writer.put(update.version);
    writer.put(update.timestamp);
    writer.put(update.sender.value);
    writer.put(static_cast<std::uint32_t>(update.payload.size()));
    writer.put_bytes(update.payload);
  }
  return out;
}

Result<std::vector<LoggedUpdate>> decode_update_batch(std::span<const std::byte> blob,
                                                      Version after, Version up_to) {
  ByteReader in(blob);
  std::uint32_t count = 0;
  if (!in.get(count) || count > in.remaining() / kTransferUpdateHeaderBytes) {
    return corruption("suffix batch: bad count");
  }
  std::vector<LoggedUpdate> updates(count);
  Version previous = after;
  for (LoggedUpdate& update : updates) {
    std::uint32_t length = 0;
    std::span<const std::byte> payload;
    if (!in.get(update.version) || !in.get(update.timestamp) || !in.get(update.sender.value) ||
        !in.get(length) || !in.get_bytes(length, payload)) {
      return corruption("suffix batch: truncated update");
    }
    if (update.version <= previous || update.version > up_to) {
      return corruption(fmt::format("suffix batch: version {:#x} outside ({:#x}, {:#x}]",
                                    update.version, previous, up_to));
    }
    previous = update.version;
    update.payload.assign(payload.begin(), payload.end());
  }
  if (in.remaining() != 0) return corruption("suffix batch: trailing bytes");
  return updates;
}

StateTransfer::StateTransfer(ViewId view, NodeId self, StateTransferOptions options)
    : view_(view), self_(self), options_(options) {
  SQUALL_ASSERT(options_.max_message_bytes > kTransferHeaderBytes + 8, "messages too small");
}

void StateTransfer::serve(ShardId shard, ShardStart start, StateMachine& machine) {
  sources_[shard.value] = Source{&machine, start};
}

void StateTransfer::receive(ShardId shard, std::vector<NodeId> sources, StateMachine& machine) {
  Receiver& receiver = receivers_[shard.value];
  receiver = Receiver{};
  receiver.machine = &machine;
  receiver.sources = std::move(sources);
  if (receiver.sources.empty()) {
    finish(shard, receiver, true);
    return;
  }
  send(receiver.sources[0], TransferMessage{.kind = TransferKind::start, .shard = shard,
                                            .value = machine.applied_version()});
}

void StateTransfer::send(NodeId peer, TransferMessage message) {
  message.view = view_;
  outbox_.emplace_back(peer, encode_transfer(message));
}

Status StateTransfer::handle(NodeId peer, std::span<const std::byte> bytes) {
  Result<TransferMessage> message = decode_transfer(bytes);
  if (!message) return message.status();
  if (message->view != view_) {
    return corruption(fmt::format("state transfer message of view {} in view {}",
                                  message->view, view_));
  }
  switch (message->kind) {
    case TransferKind::start:
    case TransferKind::log_request:
    case TransferKind::chunk_request:
      return handle_source(peer, *message);
    default:
      return handle_receiver(peer, *message);
  }
}

// ---- Source side ----

Status StateTransfer::handle_source(NodeId peer, const TransferMessage& message) {
  auto found = sources_.find(message.shard.value);
  if (found == sources_.end()) {
    return corruption(fmt::format("state transfer request for shard {}, not served here",
                                  message.shard));
  }
  Source& source = found->second;
  ShardId shard = message.shard;
  if (!source.start.synced) {
    send(peer, TransferMessage{.kind = TransferKind::not_ready, .shard = shard});
    return Status::ok();
  }
  auto key = std::pair{peer.value, shard.value};
  switch (message.kind) {
    case TransferKind::start:
      return answer_start(peer, shard, source, message.value);
    case TransferKind::log_request:
      if (!sessions_.contains(key)) return corruption("suffix request before start");
      return answer_log(peer, shard, source, message.value);
    default: {
      auto session = sessions_.find(key);
      if (session == sessions_.end() || message.value >= session->second.blob.size()) {
        return corruption(fmt::format("chunk request at {} outside the blob", message.value));
      }
      const Bytes& blob = session->second.blob;
      std::size_t room = options_.max_message_bytes - kTransferHeaderBytes - 8;
      std::size_t length = std::min<std::size_t>(room, blob.size() - message.value);
      auto begin = blob.begin() + static_cast<std::ptrdiff_t>(message.value);
      send(peer, TransferMessage{.kind = TransferKind::chunk, .shard = shard,
                                 .value = message.value,
                                 .bytes = Bytes(begin, begin + static_cast<std::ptrdiff_t>(
                                                                   length))});
      return Status::ok();
    }
  }
}

Status StateTransfer::answer_start(NodeId peer, ShardId shard, Source& source,
                                   Version applied) {
  auto key = std::pair{peer.value, shard.value};
  if (!sessions_.contains(key) && sessions_.size() >= kMaxTransferSessions) {
    return Status(Code::would_block, "too many state transfer sessions");
  }
  Session& session = sessions_[key];
  session.blob.clear();
  TransferMessage plan{.kind = TransferKind::plan, .shard = shard,
                       .view_start = source.start.version,
                       .last_timestamp = source.start.last_timestamp,
                       .persisted_floor = source.start.persisted_floor};
  // The log serves when it reaches back to the receiver's version; else a checkpoint.
  Result<std::vector<LoggedUpdate>> probe = source.machine->read_log(applied, 1);
  if (!probe && probe.status().code() != Code::out_of_range) {
    send(peer, TransferMessage{.kind = TransferKind::not_ready, .shard = shard});
    return Status::ok();
  }
  if (!probe || applied > source.start.version || !in_history(*source.machine, applied)) {
    Result<Checkpoint> checkpoint = source.machine->make_checkpoint();
    if (!checkpoint) {
      logger("core")->error("shard {}: no checkpoint for node {}: {}", shard, peer,
                            checkpoint.status().to_string());
      send(peer, TransferMessage{.kind = TransferKind::not_ready, .shard = shard});
      return Status::ok();
    }
    plan.checkpoint = true;
    plan.blob_bytes = checkpoint->state.size();
    plan.checkpoint_version = checkpoint->version;
    plan.checkpoint_timestamp = checkpoint->timestamp;
    session.blob = std::move(checkpoint->state);
  }
  send(peer, std::move(plan));
  return Status::ok();
}

Status StateTransfer::answer_log(NodeId peer, ShardId shard, Source& source, Version after) {
  Session& session = sessions_[std::pair{peer.value, shard.value}];
  Version end = source.start.version;
  std::vector<LoggedUpdate> updates;
  bool more = false;
  if (after < end) {
    Result<std::vector<LoggedUpdate>> read = source.machine->read_log(after, options_.batch_bytes);
    if (!read) {
      // The log was cut meanwhile: start over with a checkpoint.
      return answer_start(peer, shard, source, end + 1);
    }
    for (LoggedUpdate& update : *read) {
      if (update.version > end) break;
      updates.push_back(std::move(update));
    }
    more = !updates.empty() && updates.back().version < end;
  }
  session.blob = encode_update_batch(updates);
  send(peer, TransferMessage{.kind = TransferKind::batch, .shard = shard,
                             .blob_bytes = session.blob.size(), .more = more});
  return Status::ok();
}

// ---- Receiver side ----

Status StateTransfer::handle_receiver(NodeId peer, TransferMessage& message) {
  auto found = receivers_.find(message.shard.value);
  if (found == receivers_.end()) {
    return corruption(fmt::format("state transfer answer for shard {}, not pulled here",
                                  message.shard));
  }
  Receiver& receiver = found->second;
  ShardId shard = message.shard;
  if (receiver.sources[receiver.source] != peer) {
    return corruption(fmt::format("state transfer answer from node {}, not the source", peer));
  }
  switch (message.kind) {
    case TransferKind::not_ready:
      ask_next_source(shard, receiver);
      return Status::ok();
    case TransferKind::plan:
      return on_plan(shard, receiver, message);
    case TransferKind::batch:
      if (!receiver.planned || receiver.checkpoint || !receiver.blob.empty() ||
          receiver.blob_bytes != 0 || message.blob_bytes > options_.max_blob_bytes ||
          message.blob_bytes < 4) {
        return corruption("state transfer: batch out of turn or over the limit");
      }
      receiver.blob_bytes = message.blob_bytes;
      receiver.more = message.more;
      send(peer, TransferMessage{.kind = TransferKind::chunk_request, .shard = shard,
                                 .value = 0});
      return Status::ok();
    case TransferKind::chunk:
      return on_chunk(shard, receiver, message);
    default:
      return corruption("state transfer: request sent to a receiver");
  }
}

void StateTransfer::ask_next_source(ShardId shard, Receiver& receiver) {
  ++receiver.source;
  if (receiver.source >= receiver.sources.size()) {
    finish(shard, receiver, true);
    return;
  }
  Receiver fresh;
  fresh.machine = receiver.machine;
  fresh.sources = std::move(receiver.sources);
  fresh.source = receiver.source;
  receiver = std::move(fresh);
  send(receiver.sources[receiver.source],
       TransferMessage{.kind = TransferKind::start, .shard = shard,
                       .value = receiver.machine->applied_version()});
}

Status StateTransfer::on_plan(ShardId shard, Receiver& receiver, const TransferMessage& message) {
  if (message.blob_bytes > options_.max_blob_bytes ||
      (message.checkpoint && message.checkpoint_version < message.view_start)) {
    return corruption("state transfer: plan over the limit or with an old checkpoint");
  }
  receiver.planned = true;
  receiver.checkpoint = message.checkpoint;
  receiver.view_start = message.view_start;
  receiver.last_timestamp = message.last_timestamp;
  receiver.persisted_floor = message.persisted_floor;
  receiver.blob.clear();
  receiver.buffered.clear();
  receiver.buffered_bytes = 0;
  receiver.blob_bytes = 0;
  NodeId peer = receiver.sources[receiver.source];
  if (message.checkpoint) {
    receiver.pending_checkpoint = Checkpoint{message.checkpoint_version,
                                             message.checkpoint_timestamp, {}};
    receiver.blob_bytes = message.blob_bytes;
    if (message.blob_bytes == 0) return blob_complete(shard, receiver);
    send(peer, TransferMessage{.kind = TransferKind::chunk_request, .shard = shard, .value = 0});
    return Status::ok();
  }
  request_suffix(shard, receiver);
  return Status::ok();
}

void StateTransfer::request_suffix(ShardId shard, Receiver& receiver) {
  receiver.checkpoint = false;
  receiver.blob.clear();
  receiver.blob_bytes = 0;
  receiver.after = receiver.buffered.empty() ? receiver.machine->applied_version()
                                             : receiver.buffered.back().version;
  if (receiver.after >= receiver.view_start) {
    Status installed = install_buffered(receiver);
    if (!installed.is_ok()) {
      logger("core")->error("shard {}: installing the transferred suffix failed: {}", shard,
                            installed.to_string());
      ask_next_source(shard, receiver);
      return;
    }
    finish(shard, receiver, false);
    return;
  }
  send(receiver.sources[receiver.source],
       TransferMessage{.kind = TransferKind::log_request, .shard = shard,
                       .value = receiver.after});
}

Status StateTransfer::on_chunk(ShardId shard, Receiver& receiver, const TransferMessage& message) {
  if (!receiver.planned || receiver.blob_bytes == 0 || message.value != receiver.blob.size() ||
      message.bytes.size() > receiver.blob_bytes - receiver.blob.size()) {
    return corruption("state transfer: chunk out of turn or past the blob");
  }
  receiver.blob.insert(receiver.blob.end(), message.bytes.begin(), message.bytes.end());
  bytes_received_ += message.bytes.size();
  if (receiver.blob.size() < receiver.blob_bytes) {
    send(receiver.sources[receiver.source],
         TransferMessage{.kind = TransferKind::chunk_request, .shard = shard,
                         .value = receiver.blob.size()});
    return Status::ok();
  }
  return blob_complete(shard, receiver);
}

Status StateTransfer::blob_complete(ShardId shard, Receiver& receiver) {
  if (receiver.checkpoint) {
    receiver.pending_checkpoint.state = std::move(receiver.blob);
    receiver.blob.clear();
    Status installed = receiver.machine->install(receiver.pending_checkpoint, {});
    if (!installed.is_ok()) {
      return corruption("state transfer: the checkpoint does not install: " +
                        installed.to_string());
    }
    ++checkpoints_installed_;
    request_suffix(shard, receiver);
    return Status::ok();
  }
  Result<std::vector<LoggedUpdate>> updates =
      decode_update_batch(receiver.blob, receiver.after, receiver.view_start);
  if (!updates) return updates.status();
  bool more = receiver.more && !updates->empty();
  for (LoggedUpdate& update : *updates) {
    receiver.buffered_bytes += update.payload.size() + kTransferUpdateHeaderBytes;
    receiver.buffered.push_back(std::move(update));
  }
  if (receiver.buffered_bytes >= options_.max_buffered_bytes || !more) {
    Status installed = install_buffered(receiver);
    if (!installed.is_ok()) {
      return corruption("state transfer: the suffix does not install: " + installed.to_string());
    }
  }
  if (!more) {
    finish(shard, receiver, false);
    return Status::ok();
  }
  request_suffix(shard, receiver);
  return Status::ok();
}

Status StateTransfer::install_buffered(Receiver& receiver) {
  if (receiver.buffered.empty()) return Status::ok();
  // install() replaces the state: the suffix goes on top of our own state's checkpoint.
  Result<Checkpoint> own = receiver.machine->make_checkpoint();
  if (!own) return own.status();
  SQUALL_TRY(receiver.machine->install(*own, receiver.buffered));
  receiver.buffered.clear();
  receiver.buffered_bytes = 0;
  return Status::ok();
}

void StateTransfer::finish(ShardId shard, Receiver& receiver, bool lost) {
  if (lost) {
    logger("core")->warn("view {}: node {} found no source with the state of shard {}; it "
                         "continues from its own state", view_, self_, shard);
  }
  completed_.push_back(TransferDone{shard, lost ? 0 : receiver.last_timestamp,
                                    lost ? 0 : receiver.persisted_floor,
                                    receiver.machine->applied_version(), lost});
  receivers_.erase(shard.value);
}

}  // namespace squall::core
