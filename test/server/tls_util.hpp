// Throwaway certificates (the openssl command, into a temporary directory) and a small TLS
// client for the REST TLS tests. Nothing here is a real credential.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "test/server/test_client.hpp"

namespace squall::server::testing {

// A directory of certificates: a CA ("ca"), leaves signed by it, and a second, unrelated CA
// ("rogue-ca") with leaves of its own. Removed with the object.
class CertDir {
 public:
  CertDir();
  ~CertDir();
  CertDir(const CertDir&) = delete;
  CertDir& operator=(const CertDir&) = delete;

  // Makes <name>.crt and <name>.key: a leaf with CN `name` signed by `ca` ("ca" or
  // "rogue-ca"), valid for 127.0.0.1 and localhost. True on success.
  bool make_leaf(const std::string& name, const std::string& ca = "ca");
  std::string path(const std::string& file) const { return (dir_ / file).string(); }
  std::string crt(const std::string& name) const { return path(name + ".crt"); }
  std::string key(const std::string& name) const { return path(name + ".key"); }

 private:
  bool make_ca(const std::string& name);
  std::filesystem::path dir_;
};

struct TlsClientOptions {
  std::optional<std::string> ca_file;  // verify the server with it; none: no verification
  std::optional<std::string> cert_file;  // client certificate
  std::optional<std::string> key_file;
};

// One TLS connection to 127.0.0.1:`port`, every operation bounded by a deadline. Uses no
// test assertions.
class TlsTestClient {
 public:
  TlsTestClient(std::uint16_t port, const TlsClientOptions& options);

  // The handshake's result: empty when it succeeded, else the error's message.
  std::string handshake();
  // A request on the (handshaken) connection; none on an error.
  std::optional<Response> request(boost::beast::http::verb method, const std::string& target,
                                  const std::string& body = {}, const Headers& headers = {});
  // Sends a GET and reads the raw answer (header, chunk framing and body) until it contains
  // `needle`; what was read, or none on an error or the deadline first.
  std::optional<std::string> read_until(const std::string& target, const Headers& headers,
                                        const std::string& needle);
  // Reads more of the same answer until it contains `needle` (after read_until()).
  std::optional<std::string> read_more_until(const std::string& needle);
  // The common name of the server's certificate ("" before a handshake).
  std::string server_common_name();

 private:
  void run();

  boost::asio::io_context io_;
  boost::asio::ssl::context context_;
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
  std::uint16_t port_;
  bool connected_ = false;
  std::string raw_;  // read_until's bytes so far
};

}  // namespace squall::server::testing
