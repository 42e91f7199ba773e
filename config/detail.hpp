// Internal pieces of the configuration loader shared by its .cpp files. Not a public API.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.hpp"
#include "config/schema.hpp"

namespace squall::config::detail {

// Largest configuration file accepted: a configuration is a page of text, not data.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// A problem with one key, before it is given a position in the source.
struct FieldError {
  std::string path;  // "multicast.window", "layout.pools[1].prefix"; empty: the whole document
  std::string message;
};

// Remembers where each key path came from (a line of the file or a --set override) so that
// any error, including one found by validation after parsing, can point at its source.
class SourceMap {
 public:
  explicit SourceMap(std::string source_name) : source_name_(std::move(source_name)) {}

  const std::string& source_name() const { return source_name_; }

  // Records the position of `path` in the file (null marks are ignored).
  void record(const std::string& path, const YAML::Mark& mark);
  // Records that `path` (and everything under it) was set by override `text`.
  void record_override(std::string path, std::string text);

  // "file:line:column", "--set a.b=1" or "file" (when nothing more precise is known).
  std::string locate(std::string_view path) const;

  // "<location>: <path>: <message>" (path omitted when empty).
  std::string format(std::string_view path, std::string_view message) const;
  std::string format(const FieldError& error) const { return format(error.path, error.message); }

 private:
  std::optional<std::string> override_for(std::string_view path, bool descendants) const;

  std::string source_name_;
  std::map<std::string, YAML::Mark, std::less<>> marks_;
  std::vector<std::pair<std::string, std::string>> overrides_;  // (path, text), in order
};

// True if `ancestor` is `path` or a key path above it ("a" is above "a.b" and "a[0]").
bool is_path_prefix(std::string_view ancestor, std::string_view path);

// Reads the YAML tree into `out` (types, required keys, unknown keys; no ranges or
// relations). REQUIRES: root is a map.
std::optional<FieldError> parse_tree(const YAML::Node& root, SourceMap& sources, Config& out);

// Applies one "key.path=value" override to the tree and records it in `sources`.
// The error message is complete (it names the override).
Status apply_override(YAML::Node& root, std::string_view text, SourceMap& sources);

// The first range or relation violated by `config`, if any.
std::optional<FieldError> find_error(const Config& config);

// Adds the default pool "" (persistent) when the layout has none.
void ensure_default_pool(LayoutConfig& layout);

// Why `value` breaks `rule`, or nothing if it is fine.
std::optional<std::string> text_rule_error(std::string_view value, schema::Text rule);

// "value X is out of range (allowed: A..B)", with sizes in units for byte fields.
std::string out_of_range_message(std::uint64_t value, schema::Bounds bounds,
                                 schema::Number kind);

// "tcp, verbs" for an enum table.
template <typename E>
std::string allowed_names(const schema::EnumTable<E>& table) {
  std::string out;
  for (const auto& entry : table.names) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

}  // namespace squall::config::detail
