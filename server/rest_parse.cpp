#include "server/rest_parse.hpp"

#include <fmt/format.h>

namespace squall::server {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The length of the UTF-8 sequence starting at `text[0]` and its code point, or 0 when the
// sequence is malformed.
std::size_t decode_utf8(std::string_view text, std::uint32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  std::uint32_t minimum = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    minimum = 0x80;
    code_point = lead & 0x1FU;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    minimum = 0x800;
    code_point = lead & 0x0FU;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    minimum = 0x10000;
    code_point = lead & 0x07U;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3FU);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (code_point < minimum || surrogate || code_point > 0x10FFFF) return 0;
  return length;
}

}  // namespace

Target split_target(std::string_view target) {
  const std::size_t mark = target.find('?');
  if (mark == std::string_view::npos) return {target, {}};
  return {target.substr(0, mark), target.substr(mark + 1)};
}

Result<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) return invalid_argument("bad percent-encoding");
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                            c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view text) {
  while (!text.empty()) {
    std::uint32_t code_point = 0;
    const std::size_t length = decode_utf8(text, code_point);
    if (length == 0) return false;
    text.remove_prefix(length);
  }
  return true;
}

Status validate_key(std::string_view key, std::size_t max_key_bytes) {
  if (key.size() > max_key_bytes) {
    return {Code::out_of_range,
            fmt::format("key is {} bytes; the limit is {}", key.size(), max_key_bytes)};
  }
  if (key.empty()) return invalid_argument("the key is empty");
  while (!key.empty()) {
    std::uint32_t code_point = 0;
    const std::size_t length = decode_utf8(key, code_point);
    if (length == 0) return invalid_argument("the key is not valid UTF-8");
    if (code_point <= 0x1F || (code_point >= 0x7F && code_point <= 0x9F)) {
      return invalid_argument("the key contains a control character");
    }
    key.remove_prefix(length);
  }
  return Status::ok();
}

Result<std::uint64_t> parse_u64(std::string_view text) {
  if (text.empty() || text.size() > 20) return invalid_argument("not an unsigned integer");
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return invalid_argument("not an unsigned integer");
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (~std::uint64_t{0} - digit) / 10) {
      return invalid_argument("integer out of range");
    }
    value = value * 10 + digit;
  }
  return value;
}

Result<QueryParameters> parse_query(std::string_view query) {
  QueryParameters parameters;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    if (parameters.size() == kMaxQueryParameters) {
      return invalid_argument("too many query parameters");
    }
    const std::size_t equals = part.find('=');
    auto name = percent_decode(part.substr(0, equals), true);
    if (!name.is_ok()) return name.status();
    std::string value;
    if (equals != std::string_view::npos) {
      auto decoded = percent_decode(part.substr(equals + 1), true);
      if (!decoded.is_ok()) return decoded.status();
      value = std::move(decoded.value());
    }
    parameters.emplace_back(std::move(name.value()), std::move(value));
  }
  return parameters;
}

Result<std::optional<std::string>> Query::text(std::string_view name) const {
  std::optional<std::string> found;
  for (const auto& [key, value] : parameters_) {
    if (key != name) continue;
    if (found) return invalid_argument(fmt::format("query parameter {} given twice", name));
    found = value;
  }
  return found;
}

Result<std::optional<std::uint64_t>> Query::number(std::string_view name) const {
  auto value = text(name);
  if (!value.is_ok()) return value.status();
  if (!value.value()) return std::optional<std::uint64_t>();
  auto parsed = parse_u64(*value.value());
  if (!parsed.is_ok()) {
    return invalid_argument(fmt::format("{}: {}", name, parsed.status().message()));
  }
  return std::optional<std::uint64_t>(parsed.value());
}

Result<bool> Query::flag(std::string_view name, bool fallback) const {
  auto value = text(name);
  if (!value.is_ok()) return value.status();
  if (!value.value()) return fallback;
  if (*value.value() == "true") return true;
  if (*value.value() == "false") return false;
  return invalid_argument(fmt::format("{} must be true or false", name));
}

Result<std::size_t> Query::limit(std::size_t fallback, std::size_t max_limit) const {
  auto value = number("limit");
  if (!value.is_ok()) return value.status();
  if (!value.value()) return fallback;
  const std::uint64_t limit = *value.value();
  if (limit < 1 || limit > max_limit) {
    return invalid_argument(fmt::format("limit must be 1..{}", max_limit));
  }
  return static_cast<std::size_t>(limit);
}

Result<ReadPoint> Query::read_point() const {
  auto version = number("version");
  if (!version.is_ok()) return version.status();
  auto at = number("at");
  if (!at.is_ok()) return at.status();
  if (version.value() && at.value()) return invalid_argument("give version or at, not both");
  if (version.value()) return ReadPoint::at_version(*version.value());
  if (at.value()) return ReadPoint::at_time(*at.value());
  return ReadPoint::latest();
}

Result<Consistency> Query::consistency() const {
  auto value = text("consistency");
  if (!value.is_ok()) return value.status();
  if (!value.value() || *value.value() == "linearizable") return Consistency::linearizable;
  if (*value.value() == "stable") return Consistency::stable;
  return invalid_argument("consistency must be linearizable or stable");
}

Result<Precondition> parse_precondition(std::string_view if_match, bool has_if_match,
                                        std::string_view if_none_match, bool has_if_none_match,
                                        bool allow_if_none_match) {
  if (has_if_match && has_if_none_match) {
    return invalid_argument("If-Match and If-None-Match together are not supported");
  }
  if (has_if_none_match) {
    if (!allow_if_none_match) return invalid_argument("If-None-Match is not supported here");
    if (trim(if_none_match) != "*") return invalid_argument("If-None-Match must be *");
    return Precondition{Precondition::Kind::absent, 0};
  }
  if (!has_if_match) return Precondition{};
  const std::string_view value = trim(if_match);
  if (value == "*") return Precondition{Precondition::Kind::exists, 0};
  if (value.size() < 3 || value.front() != '"' || value.back() != '"') {
    return invalid_argument("If-Match must be * or one quoted version");
  }
  auto version = parse_u64(value.substr(1, value.size() - 2));
  if (!version.is_ok()) return invalid_argument("If-Match must be * or one quoted version");
  return Precondition{Precondition::Kind::version_is, version.value()};
}

}  // namespace squall::server
