// squalld under hostile input, end to end: raw bytes on real sockets against one real squalld
// process (a single-node cluster). Every case checks the answer the contract (API.md) and
// docs/api.md give — status and error body, or a closed connection — and then that the daemon
// still runs, answers /healthz, and that NO DATA CHANGED: the keys written before read back
// with the same values, versions, histories and list.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test/integration/daemon_cluster.hpp"

namespace squall::test {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kMaxValueBytes = 1 << 20;  // limits.max_value_bytes of these daemons
constexpr std::size_t kMaxKeyBytes = 4096;         // the default limits.max_key_bytes
constexpr std::size_t kMaxHeaderBytes = 32 * 1024;  // the default rest.max_header_bytes
// A guard against a wedged daemon, never a pass/fail threshold: reads give up after this.
constexpr milliseconds kHangGuard = seconds(15);

// --- One squalld ------------------------------------------------------------------------------

// One squalld process, a single-node cluster on free ports with data under a fresh temporary
// directory; `overrides` go to its command line as --set key=value. Killed (-9) and removed
// at the end.
class OneDaemon {
 public:
  explicit OneDaemon(const std::vector<std::string>& overrides) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "squalld-hostile-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    directory_ = pattern;
    rest_port_ = free_port();
    write_config();
    launch(overrides);
  }
  ~OneDaemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
  OneDaemon(const OneDaemon&) = delete;
  OneDaemon& operator=(const OneDaemon&) = delete;

  std::uint16_t port() const { return rest_port_; }

  // True while the process has not exited.
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }

  bool wait_ready(milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && alive()) {
      auto answer = http_call(rest_port_, http::verb::get, "/readyz", {}, {}, seconds(2));
      if (status_of(answer) == 200) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  std::string log() const {
    std::ifstream in(directory_ + "/squalld.log");
    std::stringstream text;
    text << in.rdbuf();
    const std::string all = text.str();
    return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
  }

 private:
  void write_config() const {
    const std::uint16_t membership = free_port();
    std::ofstream out(directory_ + "/node.yaml");
    out << fmt::format(
        "cluster:\n  name: hostile\n"
        "node:\n  id: 1\n  data_dir: \"{}/data\"\n  address: 127.0.0.1\n"
        "contact:\n  address: 127.0.0.1\n  port: {}\n"
        "ports:\n  membership: {}\n  state_transfer: {}\n  fabric: {}\n"
        "transport:\n  provider: tcp\n  domain: lo\n"
        "rest:\n  listen: \"127.0.0.1:{}\"\n"
        "layout:\n  shards: 1\n  replicas_per_shard: 1\n"
        "logging:\n  level: info\n",
        directory_, membership, membership, free_port(), free_port(), rest_port_);
  }

  void launch(const std::vector<std::string>& overrides) {
    std::vector<std::string> arguments{squalld_path(), "--config", directory_ + "/node.yaml"};
    for (const std::string& item : overrides) {
      arguments.push_back("--set");
      arguments.push_back(item);
    }
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const std::string log_path = directory_ + "/squalld.log";
    pid_ = fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      if (freopen(log_path.c_str(), "a", stdout) == nullptr) _exit(126);
      dup2(STDOUT_FILENO, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }

  std::string directory_;
  std::uint16_t rest_port_ = 0;
  pid_t pid_ = -1;
};

// --- Raw connections --------------------------------------------------------------------------

// Every response in `bytes`, in order (interim 1xx answers left out); parsing stops at the
// first incomplete or malformed one.
std::vector<HttpAnswer> parse_answers(std::string_view bytes) {
  std::vector<HttpAnswer> answers;
  while (!bytes.empty()) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(64ULL << 20);
    beast::error_code error;
    std::size_t used = 0;
    while (!parser.is_done() && used < bytes.size()) {
      const std::size_t n =
          parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), error);
      used += n;
      if (error || n == 0) break;
    }
    if (!parser.is_done()) break;
    bytes.remove_prefix(used);
    HttpAnswer answer = parser.release();
    if (answer.result_int() >= 200) answers.push_back(std::move(answer));
  }
  return answers;
}

// One client TCP connection to 127.0.0.1 written with plain POSIX calls.
class Raw {
 public:
  explicit Raw(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (fd_ >= 0 &&
        connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Raw() { close(); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False once the peer refused more (it may have answered and closed already).
  bool send(std::string_view bytes) {
    while (!bytes.empty() && fd_ >= 0) {
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
    return bytes.empty() && fd_ >= 0;
  }
  void shutdown_send() {
    if (fd_ >= 0) shutdown(fd_, SHUT_WR);
  }

  // Reads whatever arrives within `wait`; true when the peer closed (EOF or reset).
  bool read_for(milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (fd_ >= 0) {
      const auto left = std::chrono::duration_cast<milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd entry{fd_, POLLIN, 0};
      const int ready = poll(&entry, 1, static_cast<int>(std::max<long>(left.count(), 0)));
      if (ready <= 0) return false;
      char chunk[16384];
      const ssize_t got = recv(fd_, chunk, sizeof(chunk), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return true;
      received_.append(chunk, static_cast<std::size_t>(got));
    }
    return true;
  }
  // Until the peer closes; false when it has not within the hang guard.
  bool read_to_close() { return read_for(kHangGuard); }
  // Until `count` whole answers arrived (or the peer closed, or the guard passed).
  std::vector<HttpAnswer> read_answers(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    while (parse_answers(received_).size() < count &&
           std::chrono::steady_clock::now() < deadline) {
      if (read_for(milliseconds(100))) break;
    }
    return parse_answers(received_);
  }

  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

// What one connection got for `bytes`: sent, then half-closed (the daemon reads end-of-stream
// after them), then read until the daemon closed.
struct Outcome {
  bool closed = false;
  std::string received;
  std::vector<HttpAnswer> answers;
};

Outcome exchange(std::uint16_t port, std::string_view bytes) {
  Raw raw(port);
  REQUIRE(raw.connected());
  raw.send(bytes);  // the daemon may refuse the rest after answering
  raw.shutdown_send();
  Outcome outcome;
  outcome.closed = raw.read_to_close();
  outcome.received = raw.received();
  outcome.answers = parse_answers(outcome.received);
  return outcome;
}

// The answer is exactly one API error: `status`, and a JSON body {"error": code, "message"}.
void check_error(const HttpAnswer& answer, unsigned status, const std::string& code) {
  CHECK(answer.result_int() == status);
  const auto body = nlohmann::json::parse(answer.body(), nullptr, false);
  REQUIRE(body.is_object());
  CHECK(body.value("error", "") == code);
  CHECK(body.contains("message"));
  CHECK(body["message"].is_string());
}

void expect_error(const Outcome& outcome, unsigned status, const std::string& code) {
  INFO("received: " << outcome.received);
  CHECK(outcome.closed);
  REQUIRE(outcome.answers.size() == 1);
  check_error(outcome.answers[0], status, code);
}

// --- The data that must not change ------------------------------------------------------------

const std::vector<std::string> kKeyTargets = {"/v1/kv/k1", "/v1/kv/dir/k2", "/v1/kv/k3"};

// Everything a client can read about the seeded keys: each GET's status, version headers and
// value; each key's history; the list.
std::vector<std::string> snapshot(std::uint16_t port) {
  std::vector<std::string> lines;
  std::vector<std::string> targets = {"/v1/kv", "/v1/kv?prefix=dir/", "/v1/history/k1",
                                      "/v1/history/dir/k2", "/v1/history/k3"};
  targets.insert(targets.end(), kKeyTargets.begin(), kKeyTargets.end());
  for (const std::string& target : targets) {
    auto answer = http_call(port, http::verb::get, target, {}, {}, kHangGuard);
    if (!answer) {
      lines.push_back(target + " -> no answer");
      continue;
    }
    lines.push_back(fmt::format("{} -> {} etag {} version {} body {}", target,
                                answer->result_int(), std::string((*answer)["ETag"]),
                                std::string((*answer)["Squall-Version"]), answer->body()));
  }
  return lines;
}

// k1 with two versions, dir/k2, and k3 written then deleted.
std::vector<std::string> seed(std::uint16_t port) {
  REQUIRE(status_of(http_call(port, http::verb::put, "/v1/kv/k1", "one")) == 201);
  REQUIRE(status_of(http_call(port, http::verb::put, "/v1/kv/k1", "one, again")) == 200);
  REQUIRE(status_of(http_call(port, http::verb::put, "/v1/kv/dir/k2", "two")) == 201);
  REQUIRE(status_of(http_call(port, http::verb::put, "/v1/kv/k3", "three")) == 201);
  REQUIRE(status_of(http_call(port, http::verb::delete_, "/v1/kv/k3")) == 200);
  return snapshot(port);
}

std::uint64_t current_version(std::uint16_t port, const std::string& target) {
  auto answer = http_call(port, http::verb::get, target);
  REQUIRE(status_of(answer) == 200);
  return std::stoull(std::string((*answer)["Squall-Version"]));
}

// The daemon still runs, answers /healthz and a normal GET, and its data is `baseline`.
void expect_unharmed(OneDaemon& daemon, const std::vector<std::string>& baseline) {
  INFO("daemon log tail: " << daemon.log());
  REQUIRE(daemon.alive());
  REQUIRE(status_of(http_call(daemon.port(), http::verb::get, "/healthz", {}, {},
                              kHangGuard)) == 200);
  CHECK(snapshot(daemon.port()) == baseline);
}

// A started daemon with the seeded keys; `overrides` as for OneDaemon.
struct Fixture {
  explicit Fixture(std::vector<std::string> overrides = {}) : daemon(with_defaults(overrides)) {
    const bool ready = daemon.wait_ready(seconds(60));
    INFO(daemon.log());
    REQUIRE(ready);
    baseline = seed(daemon.port());
  }
  static std::vector<std::string> with_defaults(std::vector<std::string> overrides) {
    overrides.push_back(fmt::format("limits.max_value_bytes={}", kMaxValueBytes));
    return overrides;
  }
  std::uint16_t port() const { return daemon.port(); }
  void unharmed() { expect_unharmed(daemon, baseline); }

  OneDaemon daemon;
  std::vector<std::string> baseline;
};

struct Case {
  std::string name;
  std::string bytes;
  unsigned status;
  std::string code;
};

// Each case on its own connection: its error answer, the connection closed, nothing changed.
void run_cases(Fixture& fixture, const std::vector<Case>& cases) {
  for (const Case& item : cases) {
    INFO("case: " << item.name);
    expect_error(exchange(fixture.port(), item.bytes), item.status, item.code);
    fixture.unharmed();
  }
}

std::string put_k1(std::string_view headers, std::string_view body) {
  return fmt::format("PUT /v1/kv/k1 HTTP/1.1\r\nHost: x\r\n{}\r\n{}", headers, body);
}

std::string with_nul(std::string text, char marker) {
  for (char& c : text) {
    if (c == marker) c = '\0';
  }
  return text;
}

// --- Request lines and framing ----------------------------------------------------------------

TEST_CASE("hostile: malformed request lines are 400 and change nothing", "[hostile]") {
  Fixture fixture;
  run_cases(fixture, {
      {"a method with a non-token byte", "P@T /v1/kv/k1 HTTP/1.1\r\n\r\n", 400, "bad_request"},
      {"an unknown method on a known path", "BREW /v1/kv/k1 HTTP/1.1\r\nConnection: close\r\n\r\n",
       405, "method_not_allowed"},
      {"version HTTP/1.x", "PUT /v1/kv/k1 HTTP/1.x\r\nContent-Length: 1\r\n\r\nx", 400,
       "bad_request"},
      {"version HTTQ/1.1", "GET /v1/kv/k1 HTTQ/1.1\r\n\r\n", 400, "bad_request"},
      {"version HTTP/2.0", "GET /healthz HTTP/2.0\r\nConnection: close\r\n\r\n", 400,
       "bad_request"},
      {"no version", "GET /v1/kv/k1\r\n\r\n", 400, "bad_request"},
      {"no target", "GET HTTP/1.1\r\n\r\n", 400, "bad_request"},
      {"an empty target", "DELETE  HTTP/1.1\r\n\r\n", 400, "bad_request"},
      {"asterisk form", "GET * HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad_request"},
      {"absolute form", "DELETE http://x/v1/kv/k1 HTTP/1.1\r\nConnection: close\r\n\r\n", 400,
       "bad_request"},
      {"garbage", "\x7f\x01garbage \xff\xfe\r\n\r\n", 400, "bad_request"},
      {"a TLS client hello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
       400, "bad_request"},
      {"bare LF line ends", "PUT /v1/kv/k1 HTTP/1.1\nHost: x\nContent-Length: 3\n\nbad", 400,
       "bad_request"},
      {"bare LF after the header", put_k1("Content-Length: 3\n", "bad"), 400, "bad_request"},
      {"NUL in the target", with_nul("DELETE /v1/kv/k1@x HTTP/1.1\r\n\r\n", '@'), 400,
       "bad_request"},
      {"NUL in a header value", with_nul(put_k1("X-A: a@b\r\nContent-Length: 1\r\n", "x"), '@'),
       400, "bad_request"},
      {"NUL in a header name", with_nul(put_k1("X@A: ab\r\nContent-Length: 1\r\n", "x"), '@'),
       400, "bad_request"},
      {"NUL before the request line", with_nul("@PUT /v1/kv/k1 HTTP/1.1\r\n\r\n", '@'), 400,
       "bad_request"},
      {"a control byte in the target", "DELETE /v1/kv/k\x01 HTTP/1.1\r\n\r\n", 400,
       "bad_request"},
      {"a space in the target", "DELETE /v1/kv/k 1 HTTP/1.1\r\n\r\n", 400, "bad_request"},
      {"a space before a header colon", put_k1("Content-Length : 1\r\n", "x"), 400,
       "bad_request"},
      {"a header line without a colon", put_k1("Content-Length 1\r\n", "x"), 400,
       "bad_request"},
  });
}

TEST_CASE("hostile: a bad request after a good one on the same connection", "[hostile]") {
  Fixture fixture;
  const Outcome outcome = exchange(
      fixture.port(),
      "GET /v1/kv/k1 HTTP/1.1\r\nHost: x\r\n\r\n" + put_k1("Content-Length: x\r\n", "bad"));
  INFO("received: " << outcome.received);
  CHECK(outcome.closed);
  REQUIRE(outcome.answers.size() == 2);
  CHECK(outcome.answers[0].result_int() == 200);
  CHECK(outcome.answers[0].body() == "one, again");
  check_error(outcome.answers[1], 400, "bad_request");
  fixture.unharmed();
}

TEST_CASE("hostile: bad Content-Length and chunked bodies", "[hostile]") {
  Fixture fixture;
  const std::string chunked = "Transfer-Encoding: chunked\r\n";
  run_cases(fixture, {
      {"a Content-Length over 2^64", put_k1("Content-Length: 99999999999999999999999\r\n", "x"),
       400, "bad_request"},
      {"a negative Content-Length", put_k1("Content-Length: -1\r\n", "x"), 400, "bad_request"},
      {"a signed Content-Length", put_k1("Content-Length: +1\r\n", "x"), 400, "bad_request"},
      {"a hex Content-Length", put_k1("Content-Length: 0x1\r\n", "x"), 400, "bad_request"},
      {"an empty Content-Length", put_k1("Content-Length:\r\n", "x"), 400, "bad_request"},
      {"two different Content-Lengths",
       put_k1("Content-Length: 1\r\nContent-Length: 2\r\n", "xy"), 400, "bad_request"},
      {"a Content-Length list", put_k1("Content-Length: 1, 2\r\n", "xy"), 400, "bad_request"},
      {"Content-Length with chunked", put_k1("Content-Length: 0\r\n" + chunked,
                                             "1\r\nx\r\n0\r\n\r\n"),
       400, "bad_request"},
      {"chunked with Content-Length", put_k1(chunked + "Content-Length: 0\r\n",
                                             "1\r\nx\r\n0\r\n\r\n"),
       400, "bad_request"},
      {"an absurd Content-Length", put_k1("Content-Length: 1000000000000000\r\n", "x"), 413,
       "payload_too_large"},
      {"a chunk size that is not hex", put_k1(chunked, "zz\r\nx\r\n0\r\n\r\n"), 400,
       "bad_request"},
      {"a chunk size over 2^64", put_k1(chunked, "fffffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
       400, "bad_request"},
      {"a negative chunk size", put_k1(chunked, "-1\r\nx\r\n0\r\n\r\n"), 400, "bad_request"},
      {"a control byte in a chunk extension", put_k1(chunked, "1;\x01\r\nx\r\n0\r\n\r\n"), 400,
       "bad_request"},
      {"chunk data longer than its size", put_k1(chunked, "1\r\nxyz\r\n0\r\n\r\n"), 400,
       "bad_request"},
      {"a chunk size line with bare LF", put_k1(chunked, "1\nx\r\n0\r\n\r\n"), 400,
       "bad_request"},
      {"a NUL in the chunk size", with_nul(put_k1(chunked, "1@\r\nx\r\n0\r\n\r\n"), '@'), 400,
       "bad_request"},
      {"one chunk over the value limit", put_k1(chunked, "200000\r\nxyz"), 413,
       "payload_too_large"},
  });
}

// RFC 9112 section 6.3: a request whose Transfer-Encoding does not end in chunked has no
// determinable length; the server must answer 400 and close. API.md: a malformed header is
// a 400 and a hostile request never changes data. squalld (Beast) treats such a request as
// having an empty body: the PUT writes an empty value, and the bytes after the header are
// parsed as the next request.
TEST_CASE("hostile: a transfer coding that does not end in chunked is refused",
          "[hostile][!mayfail]") {
  Fixture fixture;
  for (const std::string& coding : std::vector<std::string>{"chunked, gzip", "gzip"}) {
    INFO("Transfer-Encoding: " << coding);
    const Outcome outcome = exchange(
        fixture.port(), put_k1("Transfer-Encoding: " + coding + "\r\n", "3\r\nbad\r\n0\r\n\r\n"));
    INFO("received: " << outcome.received);
    CHECK(outcome.closed);
    REQUIRE(!outcome.answers.empty());
    check_error(outcome.answers[0], 400, "bad_request");
    fixture.unharmed();
  }
}

// --- Size limits ------------------------------------------------------------------------------

// Header lines of about 110 bytes each, `size_bytes` in all (at least).
std::string filler_lines(std::size_t size_bytes) {
  std::string lines;
  for (int i = 0; lines.size() < size_bytes; ++i) {
    lines += fmt::format("X-Filler-{}: {}\r\n", i, std::string(100, 'f'));
  }
  return lines;
}

TEST_CASE("hostile: headers over the limit are 431", "[hostile]") {
  Fixture fixture;
  const std::string many = filler_lines(2 * kMaxHeaderBytes);
  const std::string huge = "X-Huge: " + std::string(kMaxHeaderBytes + 1, 'h') + "\r\n";
  const std::string long_target = "/v1/kv/" + std::string(kMaxHeaderBytes + 1, 't');
  run_cases(fixture, {
      {"a header block over the limit", put_k1(many + "Content-Length: 1\r\n", "x"), 431,
       "headers_too_large"},
      {"one header over the limit", put_k1(huge + "Content-Length: 1\r\n", "x"), 431,
       "headers_too_large"},
      {"a request line over the limit",
       "PUT " + long_target + " HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 431,
       "headers_too_large"},
      {"a header with no end", "GET /healthz HTTP/1.1\r\nX-Endless: " +
                                   std::string(2 * kMaxHeaderBytes, 'e'),
       431, "headers_too_large"},
  });
  // Just under the limit is served (the limit is where it says).
  const std::string under = "X-Big: " + std::string(kMaxHeaderBytes / 2, 'b') + "\r\n";
  const Outcome served = exchange(
      fixture.port(), "GET /v1/kv/k1 HTTP/1.1\r\n" + under + "Connection: close\r\n\r\n");
  REQUIRE(served.answers.size() == 1);
  CHECK(served.answers[0].result_int() == 200);
  CHECK(served.answers[0].body() == "one, again");
  fixture.unharmed();
}

// The documented limit (rest.max_header_bytes, "request line + headers", http_server.hpp):
// over it is a 431. squalld serves a header block of many lines up to about 4 KiB over it
// (its read buffer is the limit + 4 KiB): 36,124 bytes of headers against a 32,768-byte
// limit were answered 200 (and a PUT like this one writes).
TEST_CASE("hostile: a header block a little over the limit is 431", "[hostile][!mayfail]") {
  Fixture fixture;
  const std::string lines = filler_lines(kMaxHeaderBytes + 2048);
  expect_error(exchange(fixture.port(), put_k1(lines + "Content-Length: 1\r\n", "x")), 431,
               "headers_too_large");
  fixture.unharmed();
}

TEST_CASE("hostile: bodies over the limit are 413 and a body cut short changes nothing",
          "[hostile]") {
  Fixture fixture;
  const std::string over = std::to_string(kMaxValueBytes + 1);
  std::string chunks;
  for (std::uint64_t sent = 0; sent <= kMaxValueBytes; sent += 65536) {
    chunks += "10000\r\n" + std::string(65536, 'c') + "\r\n";
  }
  run_cases(fixture, {
      {"Content-Length over the limit", put_k1("Content-Length: " + over + "\r\n", ""), 413,
       "payload_too_large"},
      {"over the limit with 100-continue",
       put_k1("Expect: 100-continue\r\nContent-Length: " + over + "\r\n", ""), 413,
       "payload_too_large"},
      {"chunks growing over the limit",
       put_k1("Transfer-Encoding: chunked\r\n", chunks + "0\r\n\r\n"), 413,
       "payload_too_large"},
  });
  // The whole body over the limit, sent at once: refused from the header all the same.
  const Outcome whole = exchange(fixture.port(), put_k1("Content-Length: " + over + "\r\n",
                                                        std::string(kMaxValueBytes + 1, 'w')));
  expect_error(whole, 413, "payload_too_large");
  fixture.unharmed();

  // Fewer bytes than announced, then end of stream: no answer, no write.
  for (const std::string& request :
       {put_k1("Content-Length: 10\r\n", "short"),
        put_k1("Content-Length: 10\r\nExpect: 100-continue\r\n", "short"),
        put_k1("Transfer-Encoding: chunked\r\n", "5\r\nshort\r\n"),
        put_k1("Transfer-Encoding: chunked\r\n", "a\r\nshort")}) {
    INFO("request: " << request);
    const Outcome cut = exchange(fixture.port(), request);
    CHECK(cut.closed);
    CHECK(cut.answers.empty());
    fixture.unharmed();
  }
}

// --- Keys, conditional headers, query values --------------------------------------------------

std::string request(std::string_view method, std::string_view target,
                    std::string_view headers = {}, std::string_view body = "x") {
  return fmt::format("{} {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}Content-Length: {}"
                     "\r\n\r\n{}",
                     method, target, headers, body.size(), body);
}

TEST_CASE("hostile: keys that are not keys are 400 or 414 on every route", "[hostile]") {
  Fixture fixture;
  const std::vector<std::pair<std::string, unsigned>> keys = {
      {"%C3%28", 400},        // invalid UTF-8 after decoding
      {"%ED%A0%80", 400},     // a surrogate
      {"%C0%AF", 400},        // an overlong form
      {"%F4%90%80%80", 400},  // above U+10FFFF
      {"k%E2%82", 400},       // a truncated sequence
      {"%FF", 400},
      {"%00", 400},
      {"k%01", 400},
      {"k%7F", 400},
      {"k%C2%80", 400},  // U+0080, a C1 control
      {"k%0D%0AX-Injected:%20yes", 400},
      {"", 400},  // /v1/kv/ names the empty key
      {"%zz", 400},
      {"k1%4", 400},
      {"k1%", 400},
      {"%%31", 400},
      {std::string(kMaxKeyBytes + 1, 'k'), 414},
      {std::string(kMaxKeyBytes - 8, 'k') + "%E2%82%AC%E2%82%AC%E2%82%AC", 414},
  };
  for (const auto& [key, status] : keys) {
    const std::string code = status == 414 ? "uri_too_long" : "bad_request";
    for (const std::string& method : std::vector<std::string>{"PUT", "DELETE", "GET"}) {
      INFO(method << " key " << key.substr(0, 80));
      expect_error(exchange(fixture.port(), request(method, "/v1/kv/" + key)), status, code);
    }
    INFO("history of key " << key.substr(0, 80));
    expect_error(exchange(fixture.port(), request("GET", "/v1/history/" + key)), status, code);
    fixture.unharmed();
  }
}

// API.md says nothing of dot segments: `/` is part of a key, so a path is never normalized
// and `x/../k1` is a key of its own, not k1.
TEST_CASE("hostile: dot segments name other keys and never k1", "[hostile]") {
  Fixture fixture;
  const std::vector<std::string> targets = {"/v1/kv/x/../k1", "/v1/kv/./k1", "/v1/kv/%2E%2E/k1",
                                            "/v1/kv/dir/../k1", "/v1/kv/../kv/k1"};
  for (const std::string& target : targets) {
    INFO("target " << target);
    expect_error(exchange(fixture.port(), request("GET", target)), 404, "not_found");
    expect_error(exchange(fixture.port(), request("DELETE", target)), 404, "not_found");
    fixture.unharmed();
  }
}

TEST_CASE("hostile: malformed If-Match and If-None-Match are 400", "[hostile]") {
  Fixture fixture;
  const std::uint64_t v1 = current_version(fixture.port(), "/v1/kv/k1");
  const std::string current = fmt::format("\"{}\"", v1);
  const std::vector<std::string> bad_if_match = {
      std::to_string(v1),  // unquoted
      "\"abc\"",
      "\"-1\"",
      "\"\"",
      "\"" + std::to_string(v1) + " \"",
      "\"99999999999999999999\"",  // over 2^64 - 1
      current + ", " + current,    // a list
      "W/" + current,              // weak
      "\"" + std::to_string(v1),   // unterminated
      "**",
      "\"0x1\"",
  };
  for (const std::string& value : bad_if_match) {
    INFO("If-Match: " << value);
    const std::string header = "If-Match: " + value + "\r\n";
    expect_error(exchange(fixture.port(), request("PUT", "/v1/kv/k1", header)), 400,
                 "bad_request");
    expect_error(exchange(fixture.port(), request("DELETE", "/v1/kv/k1", header)), 400,
                 "bad_request");
  }
  fixture.unharmed();
  const std::vector<std::string> bad_pairs = {
      "If-Match: " + current + "\r\nIf-None-Match: *\r\n", "If-None-Match: " + current + "\r\n",
      "If-Match: *\r\nIf-None-Match: *\r\n", "If-None-Match: \r\n"};
  for (const std::string& headers : bad_pairs) {
    INFO("headers: " << headers);
    expect_error(exchange(fixture.port(), request("PUT", "/v1/kv/k1", headers)), 400,
                 "bad_request");
  }
  INFO("DELETE with If-None-Match");
  expect_error(exchange(fixture.port(), request("DELETE", "/v1/kv/k1", "If-None-Match: *\r\n")),
               400, "bad_request");
  fixture.unharmed();
}

// Well-formed conditions that do not hold: 412 with the current version, nothing written.
TEST_CASE("hostile: unmet conditions are 412 and write nothing", "[hostile]") {
  Fixture fixture;
  const std::uint64_t v1 = current_version(fixture.port(), "/v1/kv/k1");
  const std::vector<std::string> unmet = {"If-Match: \"18446744073709551615\"\r\n",
                                          fmt::format("If-Match: \"{}\"\r\n", v1 - 1),
                                          "If-None-Match: *\r\n"};
  for (const std::string& header : unmet) {
    INFO("header " << header);
    const Outcome outcome = exchange(fixture.port(), request("PUT", "/v1/kv/k1", header));
    expect_error(outcome, 412, "precondition_failed");
    const auto body = nlohmann::json::parse(outcome.answers.at(0).body());
    CHECK(body["current_version"] == v1);
  }
  const std::vector<std::string> deleted_conditions = {"If-Match: *\r\n", "If-Match: \"1\"\r\n"};
  for (const std::string& header : deleted_conditions) {
    INFO("PUT of the deleted k3 with " << header);
    const Outcome outcome = exchange(fixture.port(), request("PUT", "/v1/kv/k3", header));
    expect_error(outcome, 412, "precondition_failed");
    CHECK(nlohmann::json::parse(outcome.answers.at(0).body())["current_version"].is_null());
  }
  fixture.unharmed();
}

// API.md: If-Match: "<v>" writes only if the key's version is exactly v, a decimal u64; no
// version is 0, so "0" never holds: a 412 with the current version.
TEST_CASE("hostile: If-Match of version 0 is an unmet condition", "[hostile]") {
  Fixture fixture;
  const std::uint64_t v1 = current_version(fixture.port(), "/v1/kv/k1");
  const Outcome outcome =
      exchange(fixture.port(), request("PUT", "/v1/kv/k1", "If-Match: \"0\"\r\n"));
  expect_error(outcome, 412, "precondition_failed");
  CHECK(nlohmann::json::parse(outcome.answers.at(0).body())["current_version"] == v1);
  fixture.unharmed();
}

// RFC 9110 section 5.3: two If-Match field lines are one list. API.md: lists of ETags are a
// 400 (reading only the first line would let a list whose first member is current write).
TEST_CASE("hostile: If-Match given twice is a list and a 400", "[hostile]") {
  Fixture fixture;
  const std::uint64_t v1 = current_version(fixture.port(), "/v1/kv/k1");
  const std::string headers = fmt::format("If-Match: \"{}\"\r\nIf-Match: \"1\"\r\n", v1);
  expect_error(exchange(fixture.port(), request("PUT", "/v1/kv/k1", headers)), 400,
               "bad_request");
  fixture.unharmed();
}

TEST_CASE("hostile: bad version and at and limit and cursor values are 400", "[hostile]") {
  Fixture fixture;
  std::string many;
  for (int i = 0; i < 33; ++i) many += fmt::format("p{}=1&", i);
  const std::vector<std::string> targets = {
      "/v1/kv/k1?version=abc", "/v1/kv/k1?version=-1", "/v1/kv/k1?version=1e3",
      "/v1/kv/k1?version=%2B1", "/v1/kv/k1?version=+1", "/v1/kv/k1?version=",
      "/v1/kv/k1?version=99999999999999999999", "/v1/kv/k1?version=0x10",
      "/v1/kv/k1?version=1&version=2", "/v1/kv/k1?version=1&at=2", "/v1/kv/k1?at=yesterday",
      "/v1/kv/k1?at=-5", "/v1/kv/k1?at=1.5", "/v1/kv/k1?version=%zz",
      "/v1/kv/k1?consistency=eventual", "/v1/kv?limit=0", "/v1/kv?limit=10001",
      "/v1/kv?limit=abc", "/v1/kv?limit=-5", "/v1/kv?limit=", "/v1/kv?limit=1&limit=2",
      "/v1/kv?limit=99999999999999999999", "/v1/kv?start_after=%zz", "/v1/kv?prefix=%4",
      "/v1/kv?start_after=" + std::string(kMaxKeyBytes + 1, 's'), "/v1/kv?version=x",
      "/v1/kv?at=x", "/v1/kv?values=maybe", "/v1/kv?" + many, "/v1/history/k1?limit=0",
      "/v1/history/k1?before=x", "/v1/history/k1?before=-1", "/v1/history/k1?limit=10001",
      "/v1/watch?key=k1&cursor=garbage", "/v1/watch?key=k1&cursor=%zz",
      "/v1/watch?key=k1&cursor=", "/v1/watch?key=k1&start=yesterday",
      "/v1/watch?key=%C3%28", "/v1/watch?key=k1&prefix=k", "/v1/watch?key=k1&values=maybe"};
  for (const std::string& target : targets) {
    INFO("GET " << target.substr(0, 100));
    const std::string bytes =
        fmt::format("GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target);
    expect_error(exchange(fixture.port(), bytes), 400, "bad_request");
  }
  INFO("Last-Event-ID: garbage");
  expect_error(exchange(fixture.port(), "GET /v1/watch?key=k1 HTTP/1.1\r\nConnection: close\r\n"
                                        "Last-Event-ID: garbage\r\n\r\n"),
               400, "bad_request");
  fixture.unharmed();
}

// --- Noise, slow clients, too many clients ----------------------------------------------------

// `size` bytes from `random`, drawn from `alphabet` when it is not empty.
std::string noise(std::mt19937& random, std::size_t size, std::string_view alphabet) {
  std::string out(size, '\0');
  for (char& c : out) {
    if (alphabet.empty()) {
      c = static_cast<char>(random() & 0xFFU);
    } else {
      c = alphabet[random() % alphabet.size()];
    }
  }
  return out;
}

TEST_CASE("hostile: random bytes on many connections leave the daemon unaffected",
          "[hostile]") {
  Fixture fixture;
  std::mt19937 random(20261122);
  const std::string header_bytes = std::string("abcXYZ019:;, \t\r\n\r\n%\"/\x01\x7f\xc3", 21) +
                                   std::string(1, '\0');
  for (int i = 0; i < 240; ++i) {
    std::string bytes;
    switch (i % 3) {
      case 0: bytes = noise(random, 1 + random() % 600, {}); break;
      case 1:  // a request line, then headers made of noise (GET: never a write)
        bytes = "GET /v1/kv/k1 HTTP/1.1\r\n" + noise(random, random() % 600, header_bytes);
        break;
      default:  // a PUT header whose body framing is noise
        bytes = put_k1("Transfer-Encoding: chunked\r\n",
                       noise(random, random() % 600, "0123456789abcdefXx;=\r\n"));
    }
    const Outcome outcome = exchange(fixture.port(), bytes);
    INFO("connection " << i << " received " << outcome.received);
    REQUIRE(outcome.closed);
    for (const HttpAnswer& answer : outcome.answers) {
      CHECK(answer.result_int() < 500);
      if (i % 3 == 2) CHECK(answer.result_int() >= 400);  // never a write
    }
    if (i % 60 == 59) fixture.unharmed();
  }
  fixture.unharmed();
}

// Sends `bytes` one per second until the daemon closes the connection; meanwhile other clients
// are served. The read timeout of the daemon is 1.5 s: the request never completes.
void slowloris(Fixture& fixture, std::string_view bytes) {
  Raw slow(fixture.port());
  REQUIRE(slow.connected());
  std::size_t sent = 0;
  bool closed = false;
  while (!closed && sent < bytes.size()) {
    if (!slow.send(bytes.substr(sent, 1))) break;  // refused: the daemon closed
    ++sent;
    closed = slow.read_for(seconds(1));
    auto other = http_call(fixture.port(), http::verb::get, "/v1/kv/dir/k2", {}, {},
                           kHangGuard);
    REQUIRE(status_of(other) == 200);
    CHECK(other->body() == "two");
  }
  if (!closed) closed = slow.read_to_close();
  INFO("bytes sent " << sent << " of " << bytes.size() << "; received " << slow.received());
  CHECK(closed);
  CHECK(sent < bytes.size());
  CHECK(slow.received().empty());  // a timed-out connection is closed without an answer
  fixture.unharmed();
}

TEST_CASE("hostile: a slowloris client is cut off by the read timeout", "[hostile]") {
  Fixture fixture({"rest.read_timeout_ms=1500"});
  SECTION("a header one byte per second") {
    slowloris(fixture, put_k1("Content-Length: 4\r\nX-Slow: " + std::string(40, 's') + "\r\n",
                              "slow"));
  }
  SECTION("a body one byte per second") {
    const std::string header = put_k1("Content-Length: 40\r\n", "");
    Raw fast(fixture.port());
    REQUIRE(fast.connected());
    const std::string body(40, 'b');
    std::size_t sent = 0;
    REQUIRE(fast.send(header));
    bool closed = false;
    while (!closed && sent < body.size()) {
      if (!fast.send(body.substr(sent, 1))) break;
      ++sent;
      closed = fast.read_for(seconds(1));
      REQUIRE(status_of(http_call(fixture.port(), http::verb::get, "/healthz")) == 200);
    }
    if (!closed) closed = fast.read_to_close();
    INFO("body bytes sent " << sent << "; received " << fast.received());
    CHECK(closed);
    CHECK(sent < body.size());
    CHECK(fast.received().empty());
    fixture.unharmed();
  }
}

// Holds an open keep-alive connection that has been served once.
std::unique_ptr<Raw> holder(std::uint16_t port) {
  auto raw = std::make_unique<Raw>(port);
  REQUIRE(raw->connected());
  REQUIRE(raw->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto answers = raw->read_answers(1);
  REQUIRE(answers.size() == 1);
  REQUIRE(answers[0].result_int() == 200);
  return raw;
}

TEST_CASE("hostile: connections over the limit are refused and later served again",
          "[hostile]") {
  constexpr std::size_t kLimit = 4;
  Fixture fixture({fmt::format("rest.max_connections={}", kLimit), "watch.max_watchers=2"});
  std::vector<std::unique_ptr<Raw>> holders;
  for (std::size_t i = 0; i < kLimit; ++i) holders.push_back(holder(fixture.port()));

  for (int extra = 0; extra < 3; ++extra) {
    INFO("extra connection " << extra);
    const Outcome refused = exchange(fixture.port(), put_k1("Content-Length: 3\r\n", "bad"));
    INFO("received: " << refused.received);
    CHECK(refused.closed);
    // Checked as text: see the next case for the answer's framing.
    CHECK(refused.received.starts_with("HTTP/1.1 503 "));
    CHECK(refused.received.find("\r\nRetry-After: ") != std::string::npos);
    CHECK(refused.received.find("{\"error\":\"unavailable\"") != std::string::npos);
  }
  // The limit's holders still work.
  for (auto& raw : holders) {
    REQUIRE(raw->send("GET /v1/kv/k1 HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto answers = raw->read_answers(2);
    REQUIRE(answers.size() == 2);
    CHECK(answers[1].result_int() == 200);
    CHECK(answers[1].body() == "one, again");
  }
  holders.clear();
  // Once the daemon has seen them close, new connections are served again.
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    served = status_of(http_call(fixture.port(), http::verb::get, "/healthz")) == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(100));
  }
  REQUIRE(served);
  std::vector<std::unique_ptr<Raw>> again;
  for (std::size_t i = 0; i < kLimit; ++i) again.push_back(holder(fixture.port()));
  again.clear();
  served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    served = status_of(http_call(fixture.port(), http::verb::get, "/healthz")) == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(100));
  }
  REQUIRE(served);
  fixture.unharmed();
}


// The refusal over the connection limit (http_server.cpp) announces Content-Length: 65 for a
// 62-byte body, so a client reading it by its length waits for 3 more bytes and then gets a
// truncated message at the close instead of the 503.
TEST_CASE("hostile: the refusal over the connection limit is a well-formed answer",
          "[hostile][!mayfail]") {
  Fixture fixture({"rest.max_connections=2", "watch.max_watchers=1"});
  auto first = holder(fixture.port());
  auto second = holder(fixture.port());
  const Outcome refused = exchange(fixture.port(), "GET /healthz HTTP/1.1\r\n\r\n");
  INFO("received: " << refused.received);
  expect_error(refused, 503, "unavailable");
}

}  // namespace
}  // namespace squall::test
