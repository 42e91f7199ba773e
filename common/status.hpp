// Status and Result<T>: the one error type of Squall.
//
// Every operating error (bad input, I/O failure, a peer that died, a full queue) travels as a
// Status. Programming errors are not statuses: they are SQUALL_ASSERT failures (assert.hpp).
// A new Code is added only when some caller reacts to it specifically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/assert.hpp"

namespace squall {

// Stored in no file and sent on no wire: free to extend, but keep names stable for logs.
enum class Code : std::uint8_t {
  ok = 0,
  invalid_argument,     // the caller's input is malformed or out of range
  not_found,            // the thing asked for does not exist
  already_exists,       // the thing to create exists already
  precondition_failed,  // a conditional operation's expectation was not met
  out_of_range,         // a position/version/time outside what is retained
  corruption,           // stored or received bytes fail their integrity checks
  io_error,             // the operating system reported an I/O failure
  no_space,             // the disk or a configured budget is full
  unavailable,          // no quorum, no live replica, shutting down, peer failed
  would_block,          // a bounded queue or window is full; retry after progress
  timed_out,            // a bounded wait expired
  aborted,              // the operation was cancelled (view change, shutdown)
};

std::string_view code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool is_ok() const { return code_ == Code::ok; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "code: message", or "ok".
  std::string to_string() const;

  // Returns a copy whose message is prefixed by `context: `.
  Status with_context(std::string_view context) const;

 private:
  Code code_ = Code::ok;
  std::string message_;
};

inline Status invalid_argument(std::string message) {
  return {Code::invalid_argument, std::move(message)};
}
inline Status not_found(std::string message) { return {Code::not_found, std::move(message)}; }
inline Status corruption(std::string message) { return {Code::corruption, std::move(message)}; }
inline Status io_error(std::string message) { return {Code::io_error, std::move(message)}; }
inline Status unavailable(std::string message) {
  return {Code::unavailable, std::move(message)};
}

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    SQUALL_ASSERT(!std::get<Status>(state_).is_ok(), "Result built from an ok Status");
  }

  bool is_ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<Status>(state_);
  }
  T& value() & {
    SQUALL_ASSERT(is_ok(), "value() on an error Result: {}", status().to_string());
    return std::get<T>(state_);
  }
  const T& value() const& {
    SQUALL_ASSERT(is_ok(), "value() on an error Result: {}", status().to_string());
    return std::get<T>(state_);
  }
  T&& value() && {
    SQUALL_ASSERT(is_ok(), "value() on an error Result: {}", status().to_string());
    return std::get<T>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace squall

// Evaluates a Status expression and returns it from the enclosing function if it is an error.
#define SQUALL_TRY(expr)                               \
  do {                                                 \
    ::squall::Status squall_try_status_ = (expr);      \
    if (!squall_try_status_.is_ok()) return squall_try_status_; \
  } while (0)
