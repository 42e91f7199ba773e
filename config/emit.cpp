// Config -> YAML, through the schema: the output names every key and loads back equal.
#include <yaml-cpp/yaml.h>

#include "config/detail.hpp"
#include "config/units.hpp"

namespace squall::config {
namespace {

using schema::Bounds;
using schema::EnumTable;
using schema::Number;
using schema::Presence;
using schema::Text;

class Emitter {
 public:
  explicit Emitter(YAML::Emitter& out) : out_(out) {}

  template <typename T>
  void number(std::string_view key, const T& value, Bounds, Number kind, Presence) {
    if constexpr (requires { value.has_value(); }) {
      if (value) emit_number(key, *value, kind);
    } else {
      emit_number(key, value, kind);
    }
  }

  void boolean(std::string_view key, bool value) {
    out_ << YAML::Key << std::string(key) << YAML::Value << value;
  }

  void text(std::string_view key, const std::string& value, Text, Presence) {
    out_ << YAML::Key << std::string(key) << YAML::Value << YAML::DoubleQuoted << value;
  }
  void text(std::string_view key, const std::optional<std::string>& value, Text rule,
            Presence presence) {
    if (value) text(key, *value, rule, presence);
  }

  template <typename E>
  void enumeration(std::string_view key, E value, const EnumTable<E>&) {
    out_ << YAML::Key << std::string(key) << YAML::Value << std::string(name(value));
  }

  void host_port(std::string_view key, const HostPort& value) {
    out_ << YAML::Key << std::string(key) << YAML::Value << YAML::DoubleQuoted
         << value.to_string();
  }

  template <typename S>
  void section(std::string_view key, S& value) {
    out_ << YAML::Key << std::string(key) << YAML::Value;
    map(value);
  }

  template <typename S>
  void optional_section(std::string_view key, std::optional<S>& value) {
    if (value) section(key, *value);
  }

  template <typename S>
  void list(std::string_view key, std::vector<S>& items, Bounds) {
    out_ << YAML::Key << std::string(key) << YAML::Value << YAML::BeginSeq;
    for (S& item : items) map(item);
    out_ << YAML::EndSeq;
  }

  void text_map(std::string_view key, const std::map<std::string, std::string>& items, Text,
                Text, Bounds) {
    out_ << YAML::Key << std::string(key) << YAML::Value << YAML::BeginMap;
    for (const auto& [name, value] : items) {
      out_ << YAML::Key << name << YAML::Value << YAML::DoubleQuoted << value;
    }
    out_ << YAML::EndMap;
  }

  void text_list(std::string_view key, const std::vector<std::string>& items, Text, Bounds) {
    out_ << YAML::Key << std::string(key) << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const std::string& item : items) out_ << YAML::DoubleQuoted << item;
    out_ << YAML::EndSeq;
  }

  void unsupported(std::string_view, std::string_view) {}

  template <typename S>
  void map(S& value) {
    out_ << YAML::BeginMap;
    schema::describe(*this, value);
    out_ << YAML::EndMap;
  }

 private:
  void emit_number(std::string_view key, std::uint64_t value, Number kind) {
    out_ << YAML::Key << std::string(key) << YAML::Value;
    if (kind == Number::bytes) {
      out_ << format_size(value);
    } else {
      out_ << value;
    }
  }

  YAML::Emitter& out_;
};

}  // namespace

std::string to_yaml(const Config& config) {
  Config copy = config;  // the schema walks mutable sections; nothing is changed
  YAML::Emitter out;
  Emitter emitter(out);
  emitter.map(copy);
  SQUALL_ASSERT(out.good(), "YAML emitter failed: {}", out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

}  // namespace squall::config
