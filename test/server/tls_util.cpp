#include "test/server/tls_util.hpp"

#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>

#include <fmt/format.h>

namespace squall::server::testing {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;

namespace {

constexpr auto kDeadline = std::chrono::seconds(20);

bool run_quietly(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

CertDir::CertDir() {
  std::random_device random;
  dir_ = std::filesystem::temp_directory_path() /
         fmt::format("squall-tls-{:08x}{:08x}", random(), random());
  std::filesystem::create_directories(dir_);
  make_ca("ca");
  make_ca("rogue-ca");
}

CertDir::~CertDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool CertDir::make_ca(const std::string& name) {
  return run_quietly(fmt::format(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout {} -out {} -subj /CN={} -days 2",
      key(name), crt(name), name));
}

bool CertDir::make_leaf(const std::string& name, const std::string& ca) {
  {
    std::ofstream ext(path(name + ".ext"));
    ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  }
  return run_quietly(fmt::format(
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout {} -out {} -subj /CN={}",
             key(name), path(name + ".csr"), name)) &&
         run_quietly(fmt::format(
             "openssl x509 -req -in {} -CA {} -CAkey {} -set_serial {} -out {} -days 2 "
             "-extfile {}",
             path(name + ".csr"), crt(ca), key(ca), std::random_device{}() % 1000000 + 1,
             crt(name), path(name + ".ext")));
}

TlsTestClient::TlsTestClient(std::uint16_t port, const TlsClientOptions& options)
    : context_(ssl::context::tls_client), stream_(io_, context_), port_(port) {
  boost::system::error_code ignored;
  if (options.ca_file) {
    context_.load_verify_file(*options.ca_file, ignored);
    stream_.set_verify_mode(ssl::verify_peer, ignored);
    stream_.set_verify_callback(ssl::host_name_verification("127.0.0.1"), ignored);
  } else {
    stream_.set_verify_mode(ssl::verify_none, ignored);
  }
  if (options.cert_file) {
    SSL_use_certificate_chain_file(stream_.native_handle(), options.cert_file->c_str());
  }
  if (options.key_file) {
    SSL_use_PrivateKey_file(stream_.native_handle(), options.key_file->c_str(),
                            SSL_FILETYPE_PEM);
  }
}

void TlsTestClient::run() {
  io_.restart();
  io_.run_for(kDeadline);
  if (!io_.stopped()) {
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
    io_.run();
  }
}

std::string TlsTestClient::handshake() {
  beast::error_code result = net::error::would_block;
  beast::get_lowest_layer(stream_).async_connect(
      net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port_),
      [this, &result](beast::error_code error) {
        if (error) {
          result = error;
          return;
        }
        stream_.async_handshake(ssl::stream_base::client,
                                [&result](beast::error_code done) { result = done; });
      });
  run();
  connected_ = !result;
  if (!result) return "";
  return result.message().empty() ? "failed" : result.message();
}

std::optional<Response> TlsTestClient::request(http::verb method, const std::string& target,
                                               const std::string& body,
                                               const Headers& headers) {
  if (!connected_) return std::nullopt;
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  Response response;
  bool ok = false;
  http::async_write(stream_, request, [&](beast::error_code error, std::size_t) {
    if (error) return;
    http::async_read(stream_, buffer_, response, [&](beast::error_code read_error,
                                                     std::size_t) { ok = !read_error; });
  });
  run();
  if (!ok) return std::nullopt;
  return response;
}

std::optional<std::string> TlsTestClient::read_until(const std::string& target,
                                                    const Headers& headers,
                                                    const std::string& needle) {
  if (!connected_) return std::nullopt;
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  bool ok = false;
  http::async_write(stream_, request, [&](beast::error_code error, std::size_t) {
    ok = !error;
  });
  run();
  if (!ok) return std::nullopt;
  raw_.clear();
  return read_more_until(needle);
}

std::optional<std::string> TlsTestClient::read_more_until(const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  std::array<char, 4096> piece{};
  while (raw_.find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    bool failed = false;
    stream_.async_read_some(net::buffer(piece),
                            [&](beast::error_code error, std::size_t bytes) {
                              if (error) failed = true;
                              raw_.append(piece.data(), bytes);
                            });
    run();
    if (failed && raw_.find(needle) == std::string::npos) return std::nullopt;
  }
  return raw_;
}

std::string TlsTestClient::server_common_name() {
  X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
  if (cert == nullptr) return "";
  char name[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
  X509_free(cert);
  return name;
}

}  // namespace squall::server::testing
