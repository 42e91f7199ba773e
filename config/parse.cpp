// YAML tree -> Config: kinds of values, required keys, unknown and duplicate keys.
// Ranges and relations are not judged here but in validate.cpp, once, for every Config.
#include <algorithm>
#include <limits>
#include <type_traits>

#include <fmt/format.h>

#include "config/detail.hpp"
#include "config/units.hpp"

namespace squall::config::detail {
namespace {

using schema::Bounds;
using schema::EnumTable;
using schema::Number;
using schema::Presence;
using schema::Text;

// The state of one parse: the first error wins and every later step is skipped.
struct Context {
  SourceMap& sources;
  std::optional<FieldError> error;

  bool failed() const { return error.has_value(); }
  void fail(std::string path, std::string message) {
    if (!error) error = FieldError{std::move(path), std::move(message)};
  }
};

template <typename T>
struct Underlying {
  using type = T;
};
template <typename T>
struct Underlying<std::optional<T>> {
  using type = T;
};

std::string join_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", node.Scalar());
    default: return "nothing";
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The names a section accepts, in schema order, and the ones it reserves for later.
struct KeyLister {
  std::vector<std::string_view> keys;
  std::vector<std::pair<std::string_view, std::string_view>> reserved;

  template <typename... Args>
  void number(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void boolean(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void text(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void enumeration(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void host_port(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void section(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void optional_section(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void list(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void text_map(std::string_view key, Args&&...) { keys.push_back(key); }
  template <typename... Args>
  void text_list(std::string_view key, Args&&...) { keys.push_back(key); }
  void unsupported(std::string_view key, std::string_view reason) {
    reserved.emplace_back(key, reason);
  }
};

std::string unknown_key_message(std::string_view key, const KeyLister& lister, bool top) {
  std::string message = fmt::format("unknown {} '{}' (allowed: {})", top ? "section" : "key",
                                    key, fmt::join(lister.keys, ", "));
  std::string_view best;
  std::size_t best_distance = 3;  // suggest only close matches
  for (std::string_view candidate : lister.keys) {
    std::size_t distance = edit_distance(key, candidate);
    if (distance < best_distance && distance < std::max<std::size_t>(key.size() / 2, 1)) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best.empty()) message += fmt::format("; did you mean '{}'?", best);
  return message;
}

template <typename S>
void parse_section(Context& ctx, const YAML::Node& map, const std::string& path, S& section);

// One map of the YAML tree, read through schema::describe(). REQUIRES: the node is a map.
class Parser {
 public:
  Parser(Context& ctx, const YAML::Node& map, std::string path)
      : ctx_(ctx), path_(std::move(path)) {
    SQUALL_ASSERT(map.IsMap(), "Parser on a non-map node at '{}'", path_);
    for (const auto& pair : map) {
      if (!add_entry(pair.first, pair.second)) return;
    }
  }

  // Refuses any key the section does not define, naming the allowed ones.
  void check_keys(const KeyLister& lister) {
    for (const Entry& entry : entries_) {
      if (ctx_.failed()) return;
      if (std::find(lister.keys.begin(), lister.keys.end(), entry.key) != lister.keys.end()) {
        continue;
      }
      std::string path = join_path(path_, entry.key);
      for (const auto& [key, reason] : lister.reserved) {
        if (key == entry.key) {
          return ctx_.fail(path, fmt::format("'{}' is not supported: {}", key, reason));
        }
      }
      ctx_.fail(path, unknown_key_message(entry.key, lister, path_.empty()));
    }
  }

  template <typename T>
  void number(std::string_view key, T& value, Bounds bounds, Number kind, Presence presence) {
    auto text = scalar(key, presence, kind == Number::bytes ? "a size" : "an unsigned integer");
    if (!text) return;
    auto parsed = kind == Number::bytes ? parse_size(*text) : parse_unsigned(*text);
    std::string path = join_path(path_, key);
    if (!parsed.is_ok()) return ctx_.fail(path, parsed.status().message());
    using U = typename Underlying<T>::type;
    if (*parsed > std::numeric_limits<U>::max()) {
      return ctx_.fail(path, out_of_range_message(*parsed, bounds, kind));
    }
    value = static_cast<U>(*parsed);
  }

  void boolean(std::string_view key, bool& value) {
    auto text = scalar(key, Presence::optional, "true or false");
    if (!text) return;
    if (*text == "true" || *text == "True" || *text == "TRUE") {
      value = true;
    } else if (*text == "false" || *text == "False" || *text == "FALSE") {
      value = false;
    } else {
      ctx_.fail(join_path(path_, key), fmt::format("expected true or false, got '{}'", *text));
    }
  }

  template <typename T>
  void text(std::string_view key, T& value, Text /*rule*/, Presence presence) {
    auto text = scalar(key, presence, "a string");
    if (text) value = std::move(*text);
  }

  template <typename E>
  void enumeration(std::string_view key, E& value, const EnumTable<E>& table) {
    std::string allowed = allowed_names(table);
    auto text = scalar(key, Presence::optional, "one of " + allowed);
    if (!text) return;
    for (const auto& entry : table.names) {
      if (entry.name == *text) {
        value = entry.value;
        return;
      }
    }
    std::string path = join_path(path_, key);
    for (const auto& refusal : table.refused) {
      if (refusal.name == *text) {
        return ctx_.fail(path, fmt::format("'{}' is refused: {} (allowed: {})", *text,
                                           refusal.reason, allowed));
      }
    }
    ctx_.fail(path, fmt::format("unknown value '{}' (allowed: {})", *text, allowed));
  }

  void host_port(std::string_view key, HostPort& value) {
    auto text = scalar(key, Presence::optional, "\"host:port\"");
    if (!text) return;
    auto parsed = parse_host_port(*text);
    if (!parsed.is_ok()) return ctx_.fail(join_path(path_, key), parsed.status().message());
    value = std::move(*parsed);
  }

  template <typename S>
  void section(std::string_view key, S& value) {
    if (ctx_.failed()) return;
    const YAML::Node* node = child(key, "a map of keys");
    if (node == nullptr) {
      // Absent: still read, so that its required keys are reported as missing.
      if (!ctx_.failed()) parse_section(ctx_, YAML::Node(YAML::NodeType::Map), path(key), value);
      return;
    }
    if (expect(key, *node, YAML::NodeType::Map, "a map of keys")) {
      parse_section(ctx_, *node, path(key), value);
    }
  }

  template <typename S>
  void optional_section(std::string_view key, std::optional<S>& value) {
    if (ctx_.failed()) return;
    const YAML::Node* node = child(key, "a map of keys");
    if (node == nullptr || !expect(key, *node, YAML::NodeType::Map, "a map of keys")) return;
    value.emplace();
    parse_section(ctx_, *node, path(key), *value);
  }

  template <typename S>
  void list(std::string_view key, std::vector<S>& value, Bounds /*count*/) {
    if (ctx_.failed()) return;
    const YAML::Node* node = child(key, "a list");
    if (node == nullptr || !expect(key, *node, YAML::NodeType::Sequence, "a list")) return;
    std::vector<S> items;
    std::size_t index = 0;
    for (const auto& item : *node) {
      std::string item_path = fmt::format("{}[{}]", path(key), index++);
      ctx_.sources.record(item_path, item.Mark());
      if (!item.IsMap()) {
        return ctx_.fail(item_path, fmt::format("expected a map, got {}", describe_node(item)));
      }
      S parsed{};
      parse_section(ctx_, item, item_path, parsed);
      if (ctx_.failed()) return;
      items.push_back(std::move(parsed));
    }
    value = std::move(items);
  }

  void text_map(std::string_view key, std::map<std::string, std::string>& value,
                Text /*key_rule*/, Text /*value_rule*/, Bounds /*count*/) {
    if (ctx_.failed()) return;
    const YAML::Node* node = child(key, "a map");
    if (node == nullptr || !expect(key, *node, YAML::NodeType::Map, "a map")) return;
    Parser inner(ctx_, *node, path(key));
    std::map<std::string, std::string> items;
    for (const Entry& entry : inner.entries_) {
      auto text = inner.scalar(entry.key, Presence::required, "a string");
      if (!text) return;
      items.emplace(entry.key, std::move(*text));
    }
    value = std::move(items);
  }

  void text_list(std::string_view key, std::vector<std::string>& value, Text /*rule*/,
                 Bounds /*count*/) {
    if (ctx_.failed()) return;
    const YAML::Node* node = child(key, "a list of strings");
    if (node == nullptr || !expect(key, *node, YAML::NodeType::Sequence, "a list of strings")) {
      return;
    }
    std::vector<std::string> items;
    std::size_t index = 0;
    for (const auto& item : *node) {
      std::string item_path = fmt::format("{}[{}]", path(key), index++);
      ctx_.sources.record(item_path, item.Mark());
      if (!item.IsScalar()) {
        return ctx_.fail(item_path,
                         fmt::format("expected a string, got {}", describe_node(item)));
      }
      items.push_back(item.Scalar());
    }
    value = std::move(items);
  }

  void unsupported(std::string_view /*key*/, std::string_view /*reason*/) {}

 private:
  struct Entry {
    std::string key;
    YAML::Node value;
    YAML::Mark key_mark;
  };

  std::string path(std::string_view key) const { return join_path(path_, key); }

  bool add_entry(const YAML::Node& key, const YAML::Node& value) {
    if (!key.IsScalar()) {
      std::string key_path = path("<key>");
      ctx_.sources.record(key_path, key.Mark());
      ctx_.fail(key_path, fmt::format("keys must be plain names, got {}", describe_node(key)));
      return false;
    }
    std::string child_path = path(key.Scalar());
    // Scalar values are located at the value, others (and empty values) at their key.
    bool at_value = value.IsScalar() && !value.Mark().is_null();
    ctx_.sources.record(child_path, at_value ? value.Mark() : key.Mark());
    for (const Entry& entry : entries_) {
      if (entry.key == key.Scalar()) {
        ctx_.sources.record(child_path, key.Mark());
        ctx_.fail(child_path, fmt::format("duplicate key '{}' (first given at line {})",
                                          entry.key, entry.key_mark.line + 1));
        return false;
      }
    }
    entries_.push_back(Entry{key.Scalar(), value, key.Mark()});
    return true;
  }

  // The value of `key`, or nullptr when absent or on error (a present but empty value is an
  // error: it would be ambiguous between "default" and "nothing").
  const YAML::Node* child(std::string_view key, std::string_view expected) {
    for (const Entry& entry : entries_) {
      if (entry.key != key) continue;
      if (entry.value.IsNull()) {
        ctx_.fail(path(key), fmt::format("has no value (expected {}; remove the key to use "
                                         "the default)", expected));
        return nullptr;
      }
      return &entry.value;
    }
    return nullptr;
  }

  bool expect(std::string_view key, const YAML::Node& node, YAML::NodeType::value type,
              std::string_view expected) {
    if (node.Type() == type) return true;
    ctx_.fail(path(key), fmt::format("expected {}, got {}", expected, describe_node(node)));
    return false;
  }

  std::optional<std::string> scalar(std::string_view key, Presence presence,
                                    std::string_view expected) {
    if (ctx_.failed()) return std::nullopt;
    const YAML::Node* node = child(key, expected);
    if (node == nullptr) {
      if (!ctx_.failed() && presence == Presence::required) {
        ctx_.fail(path(key), fmt::format("required key is missing (expected {})", expected));
      }
      return std::nullopt;
    }
    if (!expect(key, *node, YAML::NodeType::Scalar, expected)) return std::nullopt;
    return node->Scalar();
  }

  Context& ctx_;
  std::string path_;
  std::vector<Entry> entries_;
};

template <typename S>
void parse_section(Context& ctx, const YAML::Node& map, const std::string& path, S& section) {
  Parser parser(ctx, map, path);
  if (ctx.failed()) return;
  KeyLister lister;
  schema::describe(lister, section);
  parser.check_keys(lister);
  if (!ctx.failed()) schema::describe(parser, section);
}

}  // namespace

std::optional<FieldError> parse_tree(const YAML::Node& root, SourceMap& sources, Config& out) {
  SQUALL_ASSERT(root.IsMap(), "parse_tree needs a map");
  Context ctx{sources, std::nullopt};
  parse_section(ctx, root, "", out);
  return ctx.error;
}

}  // namespace squall::config::detail
