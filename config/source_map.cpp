#include <fmt/format.h>

#include "config/detail.hpp"

namespace squall::config::detail {

bool is_path_prefix(std::string_view ancestor, std::string_view path) {
  if (ancestor.empty()) return true;
  if (!path.starts_with(ancestor)) return false;
  if (path.size() == ancestor.size()) return true;
  char next = path[ancestor.size()];
  return next == '.' || next == '[';
}

void SourceMap::record(const std::string& path, const YAML::Mark& mark) {
  if (!mark.is_null()) marks_.insert_or_assign(path, mark);
}

void SourceMap::record_override(std::string path, std::string text) {
  overrides_.emplace_back(std::move(path), std::move(text));
}

// The latest override that set `path` or a key above it; with `descendants`, one that set
// a key below it instead (the key then exists only because of that override).
std::optional<std::string> SourceMap::override_for(std::string_view path,
                                                   bool descendants) const {
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
    bool match = descendants ? is_path_prefix(path, it->first) : is_path_prefix(it->first, path);
    if (match) return "--set " + it->second;
  }
  return std::nullopt;
}

std::string SourceMap::locate(std::string_view path) const {
  if (path.empty()) return source_name_;
  if (auto origin = override_for(path, false)) return *origin;
  auto exact = marks_.find(path);
  if (exact != marks_.end()) {
    return fmt::format("{}:{}:{}", source_name_, exact->second.line + 1,
                       exact->second.column + 1);
  }
  if (auto origin = override_for(path, true)) return *origin;
  // The nearest enclosing key that is in the file (a missing key: point at its section).
  std::string_view ancestor = path;
  while (!ancestor.empty()) {
    auto cut = ancestor.find_last_of(".[");
    ancestor = ancestor.substr(0, cut == std::string_view::npos ? 0 : cut);
    auto it = marks_.find(ancestor);
    if (it != marks_.end() && !ancestor.empty()) {
      return fmt::format("{}:{}:{}", source_name_, it->second.line + 1, it->second.column + 1);
    }
  }
  return source_name_;
}

std::string SourceMap::format(std::string_view path, std::string_view message) const {
  if (path.empty()) return fmt::format("{}: {}", locate(path), message);
  return fmt::format("{}: {}: {}", locate(path), path, message);
}

}  // namespace squall::config::detail
