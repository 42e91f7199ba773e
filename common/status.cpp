#include "common/status.hpp"

#include <cstdio>
#include <cstdlib>

namespace squall {

std::string_view code_name(Code code) {
  switch (code) {
    case Code::ok: return "ok";
    case Code::invalid_argument: return "invalid_argument";
    case Code::not_found: return "not_found";
    case Code::already_exists: return "already_exists";
    case Code::precondition_failed: return "precondition_failed";
    case Code::out_of_range: return "out_of_range";
    case Code::corruption: return "corruption";
    case Code::io_error: return "io_error";
    case Code::no_space: return "no_space";
    case Code::unavailable: return "unavailable";
    case Code::would_block: return "would_block";
    case Code::timed_out: return "timed_out";
    case Code::aborted: return "aborted";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return fmt::format("{}: {}", code_name(code_), message_);
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  return {code_, fmt::format("{}: {}", context, message_)};
}

namespace detail {
void assertion_failed(const char* condition, const char* file, int line,
                      const std::string& message) {
  std::fprintf(stderr, "squall: assertion failed: %s at %s:%d: %s\n", condition, file, line,
               message.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

}  // namespace squall
