#include "sst_node_io.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "common/clock.hpp"

namespace squall::integration {

std::uint64_t now_us() { return SystemClock::instance().monotonic_us(); }

void emit(const nlohmann::json& line) {
  std::string text = line.dump();
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void add_rates(nlohmann::json& result, std::uint64_t elapsed_us) {
  double seconds = static_cast<double>(std::max<std::uint64_t>(elapsed_us, 1)) / 1e6;
  result["elapsed_us"] = elapsed_us;
  if (result.contains("delivered")) {
    std::uint64_t deliveries = 0;
    for (const auto& entry : result["delivered"].items()) {
      deliveries += entry.value().get<std::uint64_t>();
    }
    result["deliveries_per_s"] = static_cast<double>(deliveries) / seconds;
  }
  if (result.contains("bytes_delivered")) {
    result["delivered_mb_per_s"] =
        static_cast<double>(result["bytes_delivered"].get<std::uint64_t>()) / seconds / 1e6;
  }
}

void fail(std::uint32_t node, const std::string& what) {
  emit({{"event", "error"}, {"node", node}, {"what", what}});
  std::_Exit(1);
}

std::optional<std::string> StdinLines::next(std::uint64_t wait_ms) {
  std::uint64_t deadline = now_us() + wait_ms * 1000;
  while (true) {
    if (auto newline = buffer_.find('\n'); newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    if (eof_) return std::nullopt;
    std::uint64_t now = now_us();
    int wait = now >= deadline ? 0 : static_cast<int>((deadline - now + 999) / 1000);
    pollfd descriptor{STDIN_FILENO, POLLIN, 0};
    if (::poll(&descriptor, 1, wait) <= 0) {
      if (now_us() >= deadline) return std::nullopt;
      continue;
    }
    char chunk[1024];
    ssize_t count = ::read(STDIN_FILENO, chunk, sizeof(chunk));
    if (count <= 0) {
      eof_ = true;
      continue;
    }
    buffer_.append(chunk, static_cast<std::size_t>(count));
  }
}

Result<std::vector<std::uint32_t>> parse_number_list(const std::string& text) {
  std::vector<std::uint32_t> numbers;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    char* end = nullptr;
    unsigned long value = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value > 0xFFFF'FFFFUL) {
      return invalid_argument(fmt::format("'{}' is not a list of numbers", text));
    }
    numbers.push_back(static_cast<std::uint32_t>(value));
  }
  if (numbers.empty()) return invalid_argument("empty list");
  return numbers;
}

namespace {

Result<std::map<std::uint32_t, std::uint16_t>> parse_peers(const std::string& line) {
  std::istringstream words(line);
  std::string word;
  words >> word;
  if (word != "PEERS") return invalid_argument("expected PEERS, got: " + line);
  std::map<std::uint32_t, std::uint16_t> ports;
  while (words >> word) {
    auto colon = word.find(':');
    if (colon == std::string::npos) return invalid_argument("bad peer entry " + word);
    unsigned long id = std::strtoul(word.substr(0, colon).c_str(), nullptr, 10);
    unsigned long port = std::strtoul(word.substr(colon + 1).c_str(), nullptr, 10);
    if (id == 0 || port == 0 || port > 65535) return invalid_argument("bad peer entry " + word);
    ports[static_cast<std::uint32_t>(id)] = static_cast<std::uint16_t>(port);
  }
  return ports;
}

}  // namespace

Result<std::map<std::uint32_t, std::uint16_t>> exchange_ports(std::uint32_t self,
                                                              std::uint16_t port,
                                                              StdinLines& input,
                                                              std::uint64_t timeout_ms) {
  emit({{"event", "port"}, {"node", self}, {"port", port}});
  std::optional<std::string> line = input.next(timeout_ms);
  if (!line) return Status{Code::timed_out, "no PEERS line from the driver"};
  return parse_peers(*line);
}

Status connect_peers(fabric::Transport& transport, std::uint32_t self,
                     const std::map<std::uint32_t, std::uint16_t>& ports,
                     const std::function<void(const fabric::Event&)>& handle,
                     std::uint64_t timeout_ms) {
  std::size_t expected = 0;
  for (const auto& [id, port] : ports) {
    if (id == self) continue;
    SQUALL_TRY(transport.add_peer(NodeId(id), {"127.0.0.1", port}));
    ++expected;
  }
  std::size_t connected = 0;
  std::vector<fabric::Event> events;
  std::uint64_t deadline = now_us() + timeout_ms * 1000;
  while (connected < expected) {
    events.clear();
    transport.poll(events, 256);
    for (const fabric::Event& event : events) {
      if (event.kind == fabric::EventKind::peer_failed) {
        return unavailable(fmt::format("peer {} failed while connecting: {}", event.peer,
                                       event.status.to_string()));
      }
      if (event.kind == fabric::EventKind::peer_connected) ++connected;
      handle(event);
    }
    if (now_us() > deadline) return Status{Code::timed_out, "peers did not connect in time"};
    if (events.empty()) ::usleep(100);
  }
  return Status::ok();
}

std::unique_ptr<fabric::LibfabricTransport> make_node_transport(const NodeIdentity& node) {
  fabric::LibfabricOptions fabric_options;
  fabric_options.node_id = NodeId(node.id);
  fabric_options.connect_timeout_ms = static_cast<std::uint32_t>(node.connect_timeout_ms);
  for (std::size_t rank = 0; rank < node.ports.size(); ++rank) {
    if (node.members[rank] == node.id) {
      fabric_options.bootstrap_port = static_cast<std::uint16_t>(node.ports[rank]);
    }
  }
  auto created = fabric::LibfabricTransport::create(fabric_options);
  if (!created.is_ok()) fail(node.id, "transport: " + created.status().to_string());
  return std::move(created).value();
}

std::map<std::uint32_t, std::uint16_t> peer_ports(const NodeIdentity& node,
                                                  fabric::LibfabricTransport& transport,
                                                  StdinLines& input) {
  std::map<std::uint32_t, std::uint16_t> ports;
  if (!node.ports.empty()) {
    for (std::size_t rank = 0; rank < node.members.size(); ++rank) {
      ports[node.members[rank]] = static_cast<std::uint16_t>(node.ports[rank]);
    }
    return ports;
  }
  auto exchanged = exchange_ports(node.id, transport.bootstrap_port(), input,
                                  node.connect_timeout_ms);
  if (!exchanged.is_ok()) fail(node.id, exchanged.status().to_string());
  for (std::uint32_t id : node.members) {
    if (!exchanged->contains(id)) fail(node.id, fmt::format("PEERS lacks node {}", id));
  }
  return *exchanged;
}

}  // namespace squall::integration
