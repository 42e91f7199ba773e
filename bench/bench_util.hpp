// Small helpers shared by the benchmark programs: fatal errors, progress lines, medians.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"

namespace squall::bench {

// Stops the benchmark with "<program>: <what>" on stderr.
[[noreturn]] inline void die(const char* program, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program, what.c_str());
  std::exit(1);
}

template <typename T>
T must(const char* program, Result<T> result, const std::string& what) {
  if (!result.is_ok()) die(program, what + ": " + result.status().to_string());
  return std::move(result).value();
}

// One progress line on stderr, flushed at once.
inline void progress(const char* program, const std::string& line) {
  std::fprintf(stderr, "[%s] %s\n", program, line.c_str());
  std::fflush(stderr);
}

// REQUIRES: values is not empty.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace squall::bench
