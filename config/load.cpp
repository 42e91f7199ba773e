// Loading: read the file, parse YAML, apply overrides, read the tree, validate.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include "config/detail.hpp"

namespace squall::config {
namespace {

Result<std::string> read_file(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    return io_error(fmt::format("cannot read configuration file '{}': it is a directory", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int error = errno;
    std::string message = fmt::format("cannot read configuration file '{}': {}", path,
                                      std::strerror(error));
    return error == ENOENT ? not_found(message) : io_error(message);
  }
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > detail::kMaxConfigBytes) {
      return invalid_argument(fmt::format("configuration file '{}' is larger than {} bytes",
                                          path, detail::kMaxConfigBytes));
    }
  }
  if (in.bad()) return io_error(fmt::format("error reading configuration file '{}'", path));
  return text;
}

std::string mark_text(std::string_view source, const YAML::Mark& mark) {
  return fmt::format("{}:{}:{}", source, mark.line + 1, mark.column + 1);
}

// Counts documents and ignores their content. yaml-cpp 0.7's LoadAll loops forever, allocating
// a null document per turn, on text such as "," (its issue #1040; found by fuzz/fuzz_config):
// the parser reports a new document without consuming anything. Counting first, with a bound,
// tells such text apart; LoadAll runs the same parser, so it ends whenever the count did.
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

constexpr std::size_t kMaxDocuments = 64;

// The length of the UTF-8 sequence at the start of `text` (1-4), or 0 when it is not a
// well-formed one (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_bytes(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char first = byte(0);
  if (first < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;  // the bounds of the second byte
  if (first >= 0xC2 && first <= 0xDF) {
    length = 2;
  } else if (first >= 0xE0 && first <= 0xEF) {
    length = 3;
    if (first == 0xE0) low = 0xA0;   // overlong
    if (first == 0xED) high = 0x9F;  // surrogates
  } else if (first >= 0xF0 && first <= 0xF4) {
    length = 4;
    if (first == 0xF0) low = 0x90;   // overlong
    if (first == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Refuses text that is not UTF-8, naming the line and column (in characters) of the first
// bad byte. YAML is Unicode text: yaml-cpp reads other bytes as they are but its emitter
// escapes them, so such a configuration would not load back equal from to_yaml().
Status check_utf8(std::string_view text, std::string_view source) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = utf8_sequence_bytes(text.substr(at));
    if (length == 0) {
      return invalid_argument(fmt::format(
          "{}:{}:{}: the configuration is not valid UTF-8 (byte 0x{:02x} at offset {})",
          source, line, column, static_cast<unsigned char>(text[at]), at));
    }
    if (text[at] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    at += length;
  }
  return Status::ok();
}

// Throws YAML::Exception as LoadAll does.
bool too_many_documents(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentCounter counter;
  for (std::size_t documents = 0; parser.HandleNextDocument(counter);) {
    if (++documents > kMaxDocuments) return true;
  }
  return false;
}

// The single YAML document of `text`, as a map (an empty document is an empty map).
Result<YAML::Node> parse_document(std::string_view text, std::string_view source) {
  std::vector<YAML::Node> documents;
  try {
    if (too_many_documents(std::string(text))) {
      return invalid_argument(fmt::format("{}: more than {} YAML documents (or text yaml-cpp "
                                          "cannot parse); a configuration is one document",
                                          source, kMaxDocuments));
    }
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return invalid_argument(fmt::format("{}: malformed YAML: {}", mark_text(source, e.mark),
                                        e.msg));
  }
  if (documents.size() > 1) {
    return invalid_argument(fmt::format("{}: {} YAML documents found; a configuration is one "
                                        "document", mark_text(source, documents[1].Mark()),
                                        documents.size()));
  }
  if (documents.empty() || documents[0].IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!documents[0].IsMap()) {
    return invalid_argument(fmt::format("{}: the configuration must be a map of sections "
                                        "(cluster, node, ...), got {}",
                                        mark_text(source, documents[0].Mark()),
                                        documents[0].IsSequence() ? "a list" : "a single value"));
  }
  return documents[0];
}

}  // namespace

Result<Config> load_config_string(std::string_view text, std::string_view source_name,
                                  const std::vector<std::string>& overrides) {
  if (text.size() > detail::kMaxConfigBytes) {
    return invalid_argument(fmt::format("{}: configuration is larger than {} bytes",
                                        source_name, detail::kMaxConfigBytes));
  }
  SQUALL_TRY(check_utf8(text, source_name));
  auto root = parse_document(text, source_name);
  if (!root.is_ok()) return root.status();
  detail::SourceMap sources{std::string(source_name)};
  for (const std::string& override_text : overrides) {
    SQUALL_TRY(check_utf8(override_text, "--set"));
    SQUALL_TRY(detail::apply_override(*root, override_text, sources));
  }
  Config config;
  if (auto error = detail::parse_tree(*root, sources, config)) {
    return invalid_argument(sources.format(*error));
  }
  detail::ensure_default_pool(config.layout);
  if (auto error = detail::find_error(config)) return invalid_argument(sources.format(*error));
  return config;
}

Result<Config> load_config_file(const std::string& path,
                                const std::vector<std::string>& overrides) {
  auto text = read_file(path);
  if (!text.is_ok()) return text.status();
  return load_config_string(*text, path, overrides);
}

}  // namespace squall::config
