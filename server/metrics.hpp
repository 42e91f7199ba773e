// MetricsRegistry: counters, gauges and histograms, rendered in the Prometheus text exposition
// format (version 0.0.4) for GET /metrics.
//
// A *family* is a metric name with its help text and type; a *series* is one label set of a
// family. Series are created on first use and live as long as the registry: the references
// returned stay valid, so hot paths look a series up once and keep it. Updating a series is
// lock-free (atomics); creating one and rendering take the registry's mutex.
//
// Limits: a family holds at most `max_series_per_family` label sets; further label sets share
// one series whose label values are all "overflow", so a caller that labels by untrusted
// input cannot grow memory without bound. Callers should still label only by bounded sets.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squall::server {

// Label names and values, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(std::uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with inclusive upper bounds (`le`), plus +Inf.
class Histogram {
 public:
  // `bounds` strictly increasing, finite, at most kMaxBuckets.
  explicit Histogram(std::vector<double> bounds);

  void observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket `index`; index == bounds().size() is the +Inf bucket.
  std::uint64_t bucket_count(std::size_t index) const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

  static constexpr std::size_t kMaxBuckets = 64;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Latency buckets in seconds from 100 us to 10 s.
std::vector<double> latency_buckets_seconds();

class MetricsRegistry {
 public:
  explicit MetricsRegistry(std::size_t max_series_per_family = 1000);
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The series of `name` with `labels`, created on first use. REQUIRES: `name` and label names
  // are valid Prometheus names; a name is always used with the same type, help, label names
  // and (histograms) bounds.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       const std::vector<double>& bounds, const Labels& labels = {});
  // A gauge whose value `read` computes at each render (called under the registry's mutex:
  // it must be cheap and must not use the registry).
  void gauge_callback(std::string_view name, std::string_view help, const Labels& labels,
                      std::function<double()> read);

  // The whole registry in the text exposition format; families sorted by name.
  std::string render() const;

 private:
  enum class Type : std::uint8_t { counter, gauge, histogram };
  struct Series;
  struct Family;

  Series& series(std::string_view name, std::string_view help, Type type,
                 const Labels& labels);
  static void render_family(const std::string& name, const Family& family, std::string& out);

  const std::size_t max_series_per_family_;
  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;  // GUARDED_BY(mutex_)
};

// Escapes a label value for the exposition format (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace squall::server
