// Fuzz target: state-transfer messages from a peer (core/state_transfer.hpp): the message and
// suffix-batch codecs, and a StateTransfer that serves one shard and receives another while
// a fuzzed peer sends it a sequence of messages.
// Properties: a message or batch that decodes re-encodes to exactly itself; the state machine
// answers every input with a Status (never a crash), sends only messages that decode, installs
// only what StateMachine::install allows (ascending versions above the checkpoint's), and a
// finished transfer reports the version the machine holds.
#include <string_view>
#include <vector>

#include "core/state_transfer.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using namespace squall;
using namespace squall::core;

constexpr ViewId kView{3};
constexpr NodeId kSelf{1};
constexpr std::string_view kSeparator = "|MSG|";
constexpr std::size_t kMaxMessages = 64;

// A replica with a log of versions 1..20 (payloads of 8 bytes); install() checks its contract.
class FakeMachine final : public StateMachine {
 public:
  Status apply(const DeliveredUpdate&) override { return invalid_argument("not used"); }
  Version persisted_version() override { return applied_; }
  Version applied_version() const override { return applied_; }
  Result<Checkpoint> make_checkpoint() override {
    return Checkpoint{applied_, 100 + applied_, Bytes(40, std::byte{7})};
  }
  Result<std::vector<LoggedUpdate>> read_log(Version after, std::size_t max_bytes) override {
    std::vector<LoggedUpdate> updates;
    std::size_t bytes = 0;
    for (Version v = after + 1; v <= applied_ && (updates.empty() || bytes < max_bytes); ++v) {
      updates.push_back({v, 100 + v, NodeId{2}, Bytes(8, std::byte{9})});
      bytes += 8;
    }
    return updates;
  }
  Status install(const Checkpoint& checkpoint, std::span<const LoggedUpdate> suffix) override {
    Version previous = checkpoint.version;
    for (const LoggedUpdate& update : suffix) {
      FUZZ_CHECK(update.version > previous, "install: suffix version {} after {}",
                 update.version, previous);
      previous = update.version;
    }
    applied_ = previous;
    ++installs_;
    return Status::ok();
  }

  Version applied_ = 20;
  std::size_t installs_ = 0;
};

void check_codecs(std::span<const std::byte> bytes) {
  auto message = decode_transfer(bytes);
  if (message.is_ok()) {
    FUZZ_CHECK(fuzz::same_bytes(encode_transfer(message.value()), bytes),
               "a transfer message re-encodes differently");
  }
  auto batch = decode_update_batch(bytes, 0, std::numeric_limits<Version>::max());
  if (batch.is_ok()) {
    FUZZ_CHECK(fuzz::same_bytes(encode_update_batch(batch.value()), bytes),
               "an update batch re-encodes differently");
  }
}

// Sets the tag, reserved bytes and view a valid message needs, keeping kind, shard and body.
void fix_up(Bytes& message) {
  if (message.size() < kTransferHeaderBytes) return;
  message[0] = std::byte{kStateTransferTag};
  message[2] = message[3] = std::byte{0};
  fuzz::store_u32(message, 8, kView.value);
  fuzz::store_u32(message, 12, 0);
}

void check_outbox(StateTransfer& transfer) {
  for (const auto& [peer, bytes] : transfer.outbox()) {
    FUZZ_CHECK(decode_transfer(bytes).is_ok(), "sent a message that does not decode");
  }
  transfer.outbox().clear();
}

}  // namespace

// Input: a mode byte (bit 0: fix headers up), then messages separated by "|MSG|", each a
// sender byte (its low bit picks peer 2 or 3) and the message.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view input = fuzz::input_text(data + 1, size - 1);
  check_codecs(as_bytes(input));

  StateTransferOptions options;
  options.max_message_bytes = 256;
  options.max_blob_bytes = 4096;
  options.batch_bytes = 64;
  options.max_buffered_bytes = 1024;
  StateTransfer transfer(kView, kSelf, options);
  FakeMachine source_machine;
  FakeMachine receiver_machine;
  receiver_machine.applied_ = 5;
  transfer.serve(ShardId{0}, ShardStart{true, 20, 120, 20}, source_machine);
  transfer.receive(ShardId{1}, {NodeId{2}, NodeId{3}}, receiver_machine);
  check_outbox(transfer);
  for (std::size_t count = 0; count < kMaxMessages && input.size() >= 1; ++count) {
    const auto cut = input.find(kSeparator);
    const std::string_view part = input.substr(0, cut);
    input = cut == std::string_view::npos ? std::string_view() : input.substr(cut + 5);
    if (part.empty()) continue;
    const NodeId peer{(static_cast<std::uint8_t>(part[0]) & 1) != 0 ? 3U : 2U};
    Bytes message(as_bytes(part.substr(1)).begin(), as_bytes(part.substr(1)).end());
    if ((data[0] & 1) != 0) fix_up(message);
    (void)transfer.handle(peer, message);
    check_outbox(transfer);
  }
  for (const TransferDone& done : transfer.completed()) {
    FUZZ_CHECK(done.shard == ShardId{1}, "completed a shard it did not receive");
    if (!done.lost) {
      FUZZ_CHECK(done.version == receiver_machine.applied_version(),
                 "done at {} but the machine holds {}", done.version,
                 receiver_machine.applied_version());
    }
  }
  FUZZ_CHECK(transfer.bytes_received() <= size, "received more than was sent");
  return 0;
}
