// watch: a Server-Sent Events client that prints events as they come and resumes from the
// last event id after a disconnect (on the same or the next endpoint), so no event is missed
// or printed twice across a resume (API.md, "Watch").
#include <chrono>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/squallctl/commands.hpp"
#include "tools/squallctl/format.hpp"

namespace squall::ctl {
using nlohmann::json;

namespace {

// A line longer than this ends the stream as malformed (a 16 MiB value is ~22 MiB base64).
constexpr std::size_t kMaxLineBytes = 64ULL << 20;

struct SseEvent {
  std::string id;
  std::string type = "message";
  std::string data;
};

// Splits the stream into events (the SSE format: field lines, a blank line ends an event,
// lines starting with ':' are comments). `last_id` keeps the latest id seen, as the SSE
// spec's "last event ID" does.
class SseParser {
 public:
  // Feeds bytes; calls on_event for each complete event. False: a malformed stream or
  // on_event asked to stop (see failed()).
  template <typename OnEvent>
  bool feed(std::string_view bytes, OnEvent&& on_event) {
    pending_.append(bytes);
    std::size_t start = 0;
    for (std::size_t end; (end = pending_.find('\n', start)) != std::string::npos;
         start = end + 1) {
      std::string_view line(pending_.data() + start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) {
        field(line);
        continue;
      }
      // A blank line ends an event. An id without data (a keepalive may carry one) moves the
      // resume point without an event to show.
      if (!event_.id.empty()) last_id_ = event_.id;
      if (event_.data.empty()) {
        event_ = SseEvent{};
        continue;
      }
      event_.data.pop_back();  // the newline after the last data line
      const bool go_on = on_event(event_);
      event_ = SseEvent{};
      if (!go_on) return false;
    }
    pending_.erase(0, start);
    failed_ = pending_.size() > kMaxLineBytes;
    return !failed_;
  }
  const std::string& last_id() const { return last_id_; }
  bool failed() const { return failed_; }
  // A new connection starts with no partial line or event.
  void reset() {
    pending_.clear();
    event_ = SseEvent{};
  }

 private:
  void field(std::string_view line) {
    if (line.front() == ':') return;  // comment, e.g. ": keepalive"
    const std::size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "id") event_.id = value;
    if (name == "event") event_.type = value;
    if (name == "data") event_.data.append(value).append("\n");
  }

  std::string pending_;
  SseEvent event_;
  std::string last_id_;
  bool failed_ = false;
};

std::string watch_target(const WatchOptions& options, const std::string& cursor) {
  std::string target = options.key ? "/v1/watch?key=" + encode_query(*options.key)
                                   : "/v1/watch?prefix=" + encode_query(*options.prefix);
  if (!cursor.empty()) {
    target += "&cursor=" + encode_query(cursor);
  } else {
    target += "&start=" + encode_query(options.start);
  }
  if (!options.values) target += "&values=false";
  return target;
}

// Prints one event; false when its data is not the expected JSON.
bool print_event(Context& context, const SseEvent& event) {
  json data = json::parse(event.data, nullptr, false);
  if (!data.is_object()) return false;
  if (context.json) {
    data["event"] = event.type;
    data["id"] = event.id;
    context.out << data.dump() << std::endl;
    return true;
  }
  std::string line = fmt::format("{} {} version {} at {}", event.type, data.value("key", ""),
                                 data.value("version", std::uint64_t{0}),
                                 format_time_us(data.value("timestamp_us", std::uint64_t{0})));
  if (data.contains("value_base64")) {
    auto value = base64_decode(data["value_base64"].get<std::string>());
    if (!value.is_ok()) return false;
    line += is_printable_text(*value) ? ": " + *value
                                      : fmt::format(": ({} bytes)", value->size());
  }
  context.out << line << std::endl;
  return true;
}

struct WatchState {
  SseParser parser;
  std::uint64_t printed = 0;
  int exit_code = -1;        // set when the watch must end
  std::string retry_reason;  // why the last attempt got no stream (a 503), else empty
};

// "<endpoint>: 503 unavailable: <message>" for a 503 answer.
std::string unavailable_reason(const HttpReply& head) {
  const json body = json::parse(head.body, nullptr, false);
  const std::string message =
      body.is_object() ? body.value("message", std::string()) : std::string();
  return fmt::format("{}: 503 unavailable{}{}", head.endpoint, message.empty() ? "" : ": ",
                     message);
}

// One connection: reads events until the stream ends. Sets state.exit_code when the watch
// is over (count reached, an error answer that a retry cannot fix, a malformed stream).
Result<StreamEnd> watch_once(Context& context, const WatchOptions& options, WatchState& state,
                             bool& connected) {
  HeaderList headers{{"Accept", "text/event-stream"}};
  StreamHandlers handlers;
  handlers.on_head = [&](const HttpReply& head) {
    if (head.status == 200) {
      connected = true;
      return true;
    }
    if (head.status != 503) {
      state.exit_code = report_error(context, head);
    } else {
      state.retry_reason = unavailable_reason(head);
      context.client.skip_current();  // another node may serve it
    }
    return false;
  };
  handlers.on_data = [&](std::string_view bytes) {
    const bool ok = state.parser.feed(bytes, [&](const SseEvent& event) {
      if (!print_event(context, event)) {
        state.exit_code = report_error(context, Status(Code::corruption,
                                                       "malformed watch event: " + event.data));
        return false;
      }
      ++state.printed;
      if (options.count != 0 && state.printed >= options.count) state.exit_code = kExitOk;
      return state.exit_code < 0;
    });
    if (!ok && state.parser.failed()) {
      state.exit_code = report_error(context, Status(Code::corruption, "watch line too long"));
    }
    return ok;
  };
  state.parser.reset();
  state.retry_reason.clear();
  return context.client.stream(watch_target(options, state.parser.last_id().empty()
                                                         ? options.cursor.value_or("")
                                                         : state.parser.last_id()),
                               headers, options.idle_timeout_ms, handlers);
}

}  // namespace

int cmd_watch(Context& context, const WatchOptions& options) {
  using Clock = std::chrono::steady_clock;
  WatchState state;
  auto retry_deadline = Clock::now() + std::chrono::milliseconds(options.retry_timeout_ms);
  auto backoff = std::chrono::milliseconds(100);
  std::string reason;
  std::string reported;  // the last reason printed: a repeated one is not printed again
  while (true) {
    bool connected = false;
    auto ended = watch_once(context, options, state, connected);
    if (state.exit_code >= 0) return state.exit_code;
    if (connected) {
      // A stream was served: the retry window and the backoff start again.
      retry_deadline = Clock::now() + std::chrono::milliseconds(options.retry_timeout_ms);
      backoff = std::chrono::milliseconds(100);
    }
    reason = !ended.is_ok()                ? ended.status().message()
             : !state.retry_reason.empty() ? state.retry_reason
                                           : "the stream ended";
    if (Clock::now() >= retry_deadline) {
      context.err << "squallctl: watch: giving up reconnecting: " << reason << "\n";
      return kExitUnavailable;
    }
    if (reason != reported || connected) {
      context.err << "squallctl: watch: " << reason
                  << (state.parser.last_id().empty() ? "; retrying\n"
                                                     : "; resuming after the last event\n");
      reported = reason;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace squall::ctl
