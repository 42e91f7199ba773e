#include "server/metrics.hpp"

#include <cmath>

#include <fmt/format.h>

#include "common/assert.hpp"

namespace squall::server {
namespace {

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                        (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

// Help text escapes only backslash and newline.
std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_labels(const Labels& labels, std::string_view extra_name = {},
                          std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    out += fmt::format("{}{}=\"{}\"", first ? "" : ",", name, escape_label_value(value));
    first = false;
  }
  if (!extra_name.empty()) {
    out += fmt::format("{}{}=\"{}\"", first ? "" : ",", extra_name, extra_value);
  }
  out += "}";
  return out;
}

std::string_view type_name(int type) {
  switch (type) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  SQUALL_ASSERT(bounds_.size() <= kMaxBuckets, "{} histogram buckets", bounds_.size());
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    SQUALL_ASSERT(std::isfinite(bounds_[i]), "histogram bound not finite");
    SQUALL_ASSERT(i == 0 || bounds_[i - 1] < bounds_[i], "histogram bounds not increasing");
  }
}

void Histogram::observe(double value) {
  std::size_t index = 0;
  while (index < bounds_.size() && value > bounds_[index]) ++index;
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::uint64_t Histogram::bucket_count(std::size_t index) const {
  SQUALL_ASSERT(index <= bounds_.size(), "bucket {} of {}", index, bounds_.size());
  return buckets_[index].load(std::memory_order_relaxed);
}

std::vector<double> latency_buckets_seconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

struct MetricsRegistry::Series {
  Labels labels;
  Counter counter;
  Gauge gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> read;  // callback gauges only
};

struct MetricsRegistry::Family {
  Type type = Type::counter;
  std::string help;
  // Keyed by the rendered label set; node-based so series addresses are stable.
  std::map<std::string, std::unique_ptr<Series>> series;
};

MetricsRegistry::MetricsRegistry(std::size_t max_series_per_family)
    : max_series_per_family_(max_series_per_family) {
  SQUALL_ASSERT(max_series_per_family_ >= 1, "a family needs at least one series");
}

MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Series& MetricsRegistry::series(std::string_view name, std::string_view help,
                                                 Type type, const Labels& labels) {
  SQUALL_ASSERT(valid_name(name, true), "bad metric name '{}'", name);
  for (const auto& label : labels) {
    SQUALL_ASSERT(valid_name(label.first, false) && label.first != "le",
                  "bad label name '{}' on {}", label.first, name);
  }
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}}).first;
  }
  Family& family = it->second;
  SQUALL_ASSERT(family.type == type, "metric {} used with two types", name);
  std::string key = render_labels(labels);
  if (auto found = family.series.find(key); found != family.series.end()) {
    return *found->second;
  }
  Labels used = labels;
  if (family.series.size() >= max_series_per_family_) {
    for (auto& label : used) label.second = "overflow";
    key = render_labels(used);
    if (auto found = family.series.find(key); found != family.series.end()) {
      return *found->second;
    }
  }
  auto created = std::make_unique<Series>();
  created->labels = std::move(used);
  Series& result = *created;
  family.series.emplace(std::move(key), std::move(created));
  return result;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const Labels& labels) {
  std::lock_guard lock(mutex_);
  return series(name, help, Type::counter, labels).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help,
                              const Labels& labels) {
  std::lock_guard lock(mutex_);
  return series(name, help, Type::gauge, labels).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Series& found = series(name, help, Type::histogram, labels);
  if (!found.histogram) found.histogram = std::make_unique<Histogram>(bounds);
  SQUALL_ASSERT(found.histogram->bounds() == bounds, "histogram {} bounds differ", name);
  return *found.histogram;
}

void MetricsRegistry::gauge_callback(std::string_view name, std::string_view help,
                                     const Labels& labels, std::function<double()> read) {
  SQUALL_ASSERT(read != nullptr, "gauge callback {} is empty", name);
  std::lock_guard lock(mutex_);
  series(name, help, Type::gauge, labels).read = std::move(read);
}

void MetricsRegistry::render_family(const std::string& name, const Family& family,
                                    std::string& out) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(family.help), name,
                     type_name(static_cast<int>(family.type)));
  for (const auto& [key, series] : family.series) {
    switch (family.type) {
      case Type::counter:
        out += fmt::format("{}{} {}\n", name, key, series->counter.value());
        break;
      case Type::gauge: {
        const double value = series->read ? series->read() : series->gauge.value();
        out += fmt::format("{}{} {}\n", name, key, format_number(value));
        break;
      }
      case Type::histogram: {
        const Histogram& histogram = *series->histogram;
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= histogram.bounds().size(); ++i) {
          cumulative += histogram.bucket_count(i);
          const std::string le = i < histogram.bounds().size()
                                     ? format_number(histogram.bounds()[i])
                                     : std::string("+Inf");
          out += fmt::format("{}_bucket{} {}\n", name, render_labels(series->labels, "le", le),
                             cumulative);
        }
        out += fmt::format("{}_sum{} {}\n", name, key, format_number(histogram.sum()));
        // The +Inf bucket, not count(): the two agree even while observations race a render.
        out += fmt::format("{}_count{} {}\n", name, key, cumulative);
        break;
      }
    }
  }
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) render_family(name, family, out);
  return out;
}

}  // namespace squall::server
