// Assertions that stay on in every build type (release included).
//
// A broken invariant stops the process loudly with the file, line and a formatted message,
// instead of letting it corrupt data. Use them densely for preconditions, postconditions and
// invariants; use Status for anything an outside input can cause.
#pragma once

#include <fmt/format.h>

namespace squall::detail {
[[noreturn]] void assertion_failed(const char* condition, const char* file, int line,
                                   const std::string& message);
}  // namespace squall::detail

#define SQUALL_ASSERT(condition, ...)                                                    \
  do {                                                                                   \
    if (!(condition)) [[unlikely]] {                                                     \
      ::squall::detail::assertion_failed(#condition, __FILE__, __LINE__,                 \
                                         ::fmt::format(__VA_ARGS__));                    \
    }                                                                                    \
  } while (0)

#define SQUALL_UNREACHABLE(...) \
  ::squall::detail::assertion_failed("unreachable", __FILE__, __LINE__, ::fmt::format(__VA_ARGS__))
