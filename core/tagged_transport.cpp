#include "core/tagged_transport.hpp"

#include <iterator>

namespace squall::core {

Status TaggedTransport::write(const fabric::WriteRequest& request) {
  if (request.context == 0) return base_.write(request);
  std::uint64_t serial = next_serial_++ & kSerialMask;
  std::uint64_t context = kPrefix | (std::uint64_t{tag_} << 40) | serial;
  SQUALL_ASSERT(!outstanding_.contains(context), "{} writes outstanding on tag {}",
                outstanding_.size(), tag_);
  fabric::WriteRequest tagged = request;
  tagged.context = context;
  Status status = base_.write(tagged);
  // Only an accepted write completes; a refused one (would_block, failed peer) never does.
  if (status.is_ok()) outstanding_.emplace(context, Posted{request.peer, request.context});
  return status;
}

std::size_t TaggedTransport::poll(std::vector<fabric::Event>&, std::size_t) {
  SQUALL_UNREACHABLE("events of a shared transport are polled by its owner");
}

std::optional<std::uint64_t> TaggedTransport::translate(const fabric::Event& event) {
  if (event.kind != fabric::EventKind::write_completed) return std::nullopt;
  auto found = outstanding_.find(event.context);
  if (found == outstanding_.end()) return std::nullopt;
  std::uint64_t context = found->second.context;
  outstanding_.erase(found);
  return context;
}

void TaggedTransport::forget_peer(NodeId peer) {
  std::erase_if(outstanding_, [peer](const auto& entry) { return entry.second.peer == peer; });
}

bool handle_sst_event(const fabric::Event& event, TaggedTransport& transport,
                      sst::Table& table, sst::FailureDetector& detector) {
  switch (event.kind) {
    case fabric::EventKind::peer_connected:
      table.peer_connected(event.peer);
      return false;
    case fabric::EventKind::peer_failed:
      transport.forget_peer(event.peer);
      detector.peer_failed(event.peer, event.status.to_string());
      return false;
    case fabric::EventKind::write_completed: {
      std::optional<std::uint64_t> context = transport.translate(event);
      if (!context) return false;  // another group's or module's
      table.on_write_completed(*context, event.status);
      return true;
    }
    case fabric::EventKind::remote_write:
    case fabric::EventKind::message:
      return false;
  }
  return false;
}

}  // namespace squall::core
