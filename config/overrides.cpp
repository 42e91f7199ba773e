// `--set key.path=value` overrides, applied to the YAML tree before it is parsed, so an
// override goes through exactly the checks a line of the file would.
#include <fmt/format.h>

#include "config/detail.hpp"
#include "config/units.hpp"

namespace squall::config::detail {
namespace {

constexpr std::size_t kMaxOverrideBytes = 64 * 1024;
constexpr std::size_t kMaxPathSegments = 16;

// One step of a key path: a map key, optionally followed by a list index ("pools[1]").
struct Segment {
  std::string key;
  std::optional<std::size_t> index;
};

Result<Segment> parse_segment(std::string_view text) {
  Segment out;
  auto open = text.find('[');
  out.key = std::string(text.substr(0, open));
  if (out.key.empty()) return invalid_argument("empty key in the key path");
  if (open == std::string_view::npos) return out;
  if (!text.ends_with(']')) return invalid_argument(fmt::format("malformed index in '{}'", text));
  auto index = parse_unsigned(text.substr(open + 1, text.size() - open - 2));
  if (!index.is_ok() || *index > 1'000'000) {
    return invalid_argument(fmt::format("malformed index in '{}'", text));
  }
  out.index = static_cast<std::size_t>(*index);
  return out;
}

Result<std::vector<Segment>> parse_path(std::string_view path) {
  std::vector<Segment> segments;
  while (true) {
    auto dot = path.find('.');
    auto segment = parse_segment(path.substr(0, dot));
    if (!segment.is_ok()) return segment.status();
    segments.push_back(std::move(*segment));
    if (segments.size() > kMaxPathSegments) return invalid_argument("key path is too deep");
    if (dot == std::string_view::npos) return segments;
    path.remove_prefix(dot + 1);
  }
}

// `{...}` and `[...]` are YAML flow collections and quoted text is a YAML quoted scalar;
// anything else is taken verbatim as a plain value, so "#", ":" or "a: b" need no quoting.
// An empty value is the empty string (e.g. `logging.file=` for stderr), not "no value".
Result<YAML::Node> parse_value(std::string_view text) {
  bool structured = !text.empty() && (text.front() == '{' || text.front() == '[' ||
                                      text.front() == '"' || text.front() == '\'');
  if (!structured) return YAML::Node(std::string(text));
  bool quoted = text.front() == '"' || text.front() == '\'';
  if (quoted && (text.size() < 2 || text.back() != text.front())) {
    return invalid_argument("a quoted value must end with its closing quote");
  }
  YAML::Node node;
  try {
    node = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return invalid_argument(fmt::format("the value is not valid YAML: {}", e.msg));
  }
  if (quoted && !node.IsScalar()) {
    return invalid_argument("the value is not a single quoted string");
  }
  return node;
}

std::string kind_of(const YAML::Node& node) {
  return node.IsSequence() ? "a list" : node.IsMap() ? "a map" : "a single value";
}

// Walks (and creates) the path below `root`; sets the last step to `value`. Returns the
// canonical path ("layout.pools[1].prefix") for the source map.
Result<std::string> set_path(YAML::Node root, const std::vector<Segment>& segments,
                             const YAML::Node& value) {
  YAML::Node current = root;
  std::string path;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& segment = segments[i];
    bool last = i + 1 == segments.size();
    if (!current.IsMap()) {
      return invalid_argument(fmt::format("{} is {}, not a map of keys", path, kind_of(current)));
    }
    path = path.empty() ? segment.key : path + "." + segment.key;
    YAML::Node child = current[segment.key];
    if (!segment.index) {
      if (last) {
        child = value;
        return path;
      }
      if (!child.IsDefined() || child.IsNull()) child = YAML::Node(YAML::NodeType::Map);
      current.reset(child);
      continue;
    }
    if (!child.IsDefined() || child.IsNull()) child = YAML::Node(YAML::NodeType::Sequence);
    if (!child.IsSequence()) {
      return invalid_argument(fmt::format("{} is {}, not a list", path, kind_of(child)));
    }
    std::size_t index = *segment.index;
    if (index > child.size()) {
      return invalid_argument(fmt::format("{} has {} entries; index {} is past its end (use {} "
                                          "to append)", path, child.size(), index, child.size()));
    }
    path += fmt::format("[{}]", index);
    YAML::Node element = last ? value : YAML::Node(YAML::NodeType::Map);
    if (index == child.size()) {
      child.push_back(element);
    } else if (last) {
      child[index] = value;
    }
    if (last) return path;
    current.reset(child[index]);
  }
  SQUALL_UNREACHABLE("set_path ended without a last segment");
}

}  // namespace

Status apply_override(YAML::Node& root, std::string_view text, SourceMap& sources) {
  auto fail = [&](std::string_view message) {
    return invalid_argument(fmt::format("--set {}: {}", text, message));
  };
  if (text.size() > kMaxOverrideBytes) return fail("override is too long");
  auto equals = text.find('=');
  if (equals == std::string_view::npos) return fail("expected key.path=value");
  auto segments = parse_path(text.substr(0, equals));
  if (!segments.is_ok()) return fail(segments.status().message());
  auto value = parse_value(text.substr(equals + 1));
  if (!value.is_ok()) return fail(value.status().message());
  auto path = set_path(root, *segments, *value);
  if (!path.is_ok()) return fail(path.status().message());
  sources.record_override(std::move(*path), std::string(text));
  return Status::ok();
}

}  // namespace squall::config::detail
