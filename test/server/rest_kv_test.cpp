// The key-value routes through the real HTTP server: statuses, headers and bodies of the
// contract (docs/api.md).
#include <catch2/catch.hpp>

#include "common/version.hpp"
#include "server/rest_response.hpp"
#include "test/server/server_fixture.hpp"

namespace squall::server::testing {
namespace http = boost::beast::http;

namespace {

std::string quoted(const nlohmann::json& version) {
  return "\"" + std::to_string(version.get<std::uint64_t>()) + "\"";
}

void require_error(const Response& response, unsigned status, std::string_view code) {
  CAPTURE(response.body());
  REQUIRE(response.result_int() == status);
  REQUIRE(header_of(response, "Content-Type") == "application/json");
  const auto body = json_of(response);
  REQUIRE(body["error"] == code);
  REQUIRE(body["message"].is_string());
}

}  // namespace

TEST_CASE("PUT creates (201) then replaces (200), GET returns the value with headers") {
  ServerFixture fixture;
  TestClient client = fixture.client();

  const Response created = client.put("/v1/kv/users/42", "hello");
  REQUIRE(created.result_int() == 201);
  const auto first = json_of(created);
  REQUIRE(first["key"] == "users/42");
  REQUIRE(first["version"].is_number_unsigned());
  REQUIRE(first["timestamp_us"].is_number_unsigned());
  REQUIRE(first["shard"] == 0);
  REQUIRE(header_of(created, "ETag") == quoted(first["version"]));

  const Response replaced = client.put("/v1/kv/users/42", "world");
  REQUIRE(replaced.result_int() == 200);
  const auto second = json_of(replaced);
  REQUIRE(second["version"].get<std::uint64_t>() > first["version"].get<std::uint64_t>());
  REQUIRE(second["timestamp_us"].get<std::uint64_t>() >=
          first["timestamp_us"].get<std::uint64_t>());

  const Response read = client.get("/v1/kv/users/42");
  REQUIRE(read.result_int() == 200);
  REQUIRE(read.body() == "world");
  REQUIRE(header_of(read, "Content-Type") == "application/octet-stream");
  REQUIRE(header_of(read, "ETag") == quoted(second["version"]));
  REQUIRE(header_of(read, "Squall-Version") == std::to_string(second["version"].get<Version>()));
  REQUIRE(header_of(read, "Squall-Timestamp-Us") ==
          std::to_string(second["timestamp_us"].get<std::uint64_t>()));
}

TEST_CASE("values are raw bytes, empty values included") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  REQUIRE(client.put("/v1/kv/bin", binary).result_int() == 201);
  REQUIRE(client.get("/v1/kv/bin").body() == binary);
  REQUIRE(client.put("/v1/kv/empty", "").result_int() == 201);
  const Response empty = client.get("/v1/kv/empty");
  REQUIRE(empty.result_int() == 200);
  REQUIRE(empty.body().empty());
}

TEST_CASE("GET and DELETE of absent or deleted keys are 404") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  require_error(client.get("/v1/kv/missing"), 404, "not_found");
  require_error(client.del("/v1/kv/missing"), 404, "not_found");

  REQUIRE(client.put("/v1/kv/k", "v").result_int() == 201);
  const Response deleted = client.del("/v1/kv/k");
  REQUIRE(deleted.result_int() == 200);
  const auto body = json_of(deleted);
  REQUIRE(body["key"] == "k");
  REQUIRE(body["version"].is_number_unsigned());
  REQUIRE(body["timestamp_us"].is_number_unsigned());
  require_error(client.get("/v1/kv/k"), 404, "not_found");
  require_error(client.del("/v1/kv/k"), 404, "not_found");
  // A put after a delete creates the key again.
  REQUIRE(client.put("/v1/kv/k", "again").result_int() == 201);
}

TEST_CASE("percent-encoded keys: slashes, escapes, UTF-8, plus signs") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  REQUIRE(client.put("/v1/kv/a%2Fb", "1").result_int() == 201);
  REQUIRE(client.get("/v1/kv/a/b").body() == "1");  // %2F and / name the same key
  REQUIRE(json_of(client.put("/v1/kv/sp%20ace", "2"))["key"] == "sp ace");
  REQUIRE(json_of(client.put("/v1/kv/a+b", "3"))["key"] == "a+b");  // '+' is literal in paths
  REQUIRE(json_of(client.put("/v1/kv/%C3%A9t%C3%A9", "4"))["key"] == "\xC3\xA9t\xC3\xA9");
  REQUIRE(client.get("/v1/kv/%c3%a9t%c3%a9").body() == "4");  // lower-case hex
  REQUIRE(json_of(client.put("/v1/kv/q%3Fx%26y", "5"))["key"] == "q?x&y");
  REQUIRE(client.get("/v1/kv/q%3Fx%26y?consistency=stable").body() == "5");
  REQUIRE(json_of(client.put("/v1/kv/%25", "6"))["key"] == "%");
  REQUIRE(json_of(client.put("/v1/kv//lead", "7"))["key"] == "/lead");
}

TEST_CASE("malformed keys are 400, keys over the limit are 414") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  require_error(client.put("/v1/kv/", "x"), 400, "bad_request");      // the empty key
  require_error(client.get("/v1/kv/"), 400, "bad_request");
  require_error(client.put("/v1/kv/bad%zz", "x"), 400, "bad_request");  // bad escape
  require_error(client.put("/v1/kv/bad%4", "x"), 400, "bad_request");   // truncated escape
  require_error(client.put("/v1/kv/%FF", "x"), 400, "bad_request");     // not UTF-8
  require_error(client.put("/v1/kv/%C0%AF", "x"), 400, "bad_request");  // overlong
  require_error(client.put("/v1/kv/%ED%A0%80", "x"), 400, "bad_request");  // surrogate
  require_error(client.put("/v1/kv/a%00b", "x"), 400, "bad_request");   // U+0000
  require_error(client.put("/v1/kv/a%1Fb", "x"), 400, "bad_request");   // U+001F
  require_error(client.put("/v1/kv/a%7Fb", "x"), 400, "bad_request");   // U+007F
  require_error(client.put("/v1/kv/a%C2%85b", "x"), 400, "bad_request");  // U+0085
  require_error(client.put("/v1/kv/a%C2%9Fb", "x"), 400, "bad_request");  // U+009F
  REQUIRE(client.put("/v1/kv/a%C2%A0b", "x").result_int() == 201);      // U+00A0 is fine

  const std::string at_limit(4096, 'k');
  REQUIRE(client.put("/v1/kv/" + at_limit, "x").result_int() == 201);
  REQUIRE(client.get("/v1/kv/" + at_limit).body() == "x");
  require_error(client.put("/v1/kv/" + at_limit + "k", "x"), 414, "uri_too_long");
  require_error(client.get("/v1/kv/" + at_limit + "k"), 414, "uri_too_long");
  // The limit counts decoded bytes: 4096 "%41" escapes are 4096 bytes.
  std::string escaped;
  for (int i = 0; i < 4096; ++i) escaped += "%41";
  REQUIRE(client.put("/v1/kv/" + escaped, "y").result_int() == 201);
  // Nothing malformed changed data.
  require_error(client.get("/v1/kv/bad"), 404, "not_found");
}

TEST_CASE("If-Match and If-None-Match: compare-and-swap, create-only, 412 bodies") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  // Create-only.
  const Response created = client.put("/v1/kv/c", "1", {{"If-None-Match", "*"}});
  REQUIRE(created.result_int() == 201);
  const Version v1 = json_of(created)["version"];
  Response refused = client.put("/v1/kv/c", "2", {{"If-None-Match", "*"}});
  require_error(refused, 412, "precondition_failed");
  REQUIRE(json_of(refused)["current_version"] == v1);

  // Compare-and-swap.
  const std::string tag = "\"" + std::to_string(v1) + "\"";
  const Response swapped = client.put("/v1/kv/c", "3", {{"If-Match", tag}});
  REQUIRE(swapped.result_int() == 200);
  const Version v2 = json_of(swapped)["version"];
  refused = client.put("/v1/kv/c", "4", {{"If-Match", tag}});
  require_error(refused, 412, "precondition_failed");
  REQUIRE(json_of(refused)["current_version"] == v2);
  REQUIRE(client.get("/v1/kv/c").body() == "3");

  // If-Match: * needs the key to exist; on an absent key current_version is null.
  REQUIRE(client.put("/v1/kv/c", "5", {{"If-Match", "*"}}).result_int() == 200);
  refused = client.put("/v1/kv/none", "x", {{"If-Match", "*"}});
  require_error(refused, 412, "precondition_failed");
  REQUIRE(json_of(refused)["current_version"].is_null());
  refused = client.put("/v1/kv/none", "x", {{"If-Match", "\"1\""}});
  REQUIRE(json_of(refused)["current_version"].is_null());
}

TEST_CASE("conditional DELETE, and deleted keys never match If-Match but match If-None-Match") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  const Version v1 = json_of(client.put("/v1/kv/d", "1"))["version"];
  Response refused = client.del("/v1/kv/d", {{"If-Match", "\"" + std::to_string(v1 + 1) + "\""}});
  require_error(refused, 412, "precondition_failed");
  REQUIRE(json_of(refused)["current_version"] == v1);
  REQUIRE(client.del("/v1/kv/d", {{"If-Match", "\"" + std::to_string(v1) + "\""}})
              .result_int() == 200);
  refused = client.del("/v1/kv/d", {{"If-Match", "*"}});
  require_error(refused, 412, "precondition_failed");
  REQUIRE(json_of(refused)["current_version"].is_null());
  refused = client.put("/v1/kv/d", "2", {{"If-Match", "\"" + std::to_string(v1) + "\""}});
  REQUIRE(json_of(refused)["current_version"].is_null());
  REQUIRE(client.put("/v1/kv/d", "2", {{"If-None-Match", "*"}}).result_int() == 201);
}

TEST_CASE("malformed conditional headers are 400") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  require_error(client.put("/v1/kv/h", "x", {{"If-Match", "5"}}), 400, "bad_request");
  require_error(client.put("/v1/kv/h", "x", {{"If-Match", "W/\"5\""}}), 400, "bad_request");
  require_error(client.put("/v1/kv/h", "x", {{"If-Match", "\"5\", \"6\""}}), 400,
                "bad_request");
  require_error(client.put("/v1/kv/h", "x", {{"If-Match", "\"-1\""}}), 400, "bad_request");
  require_error(client.put("/v1/kv/h", "x", {{"If-None-Match", "\"5\""}}), 400, "bad_request");
  require_error(client.put("/v1/kv/h", "x", {{"If-Match", "*"}, {"If-None-Match", "*"}}), 400,
                "bad_request");
  require_error(client.get("/v1/kv/h"), 404, "not_found");  // nothing was written
}

TEST_CASE("GET at a version or a time, and 410 once retention discarded it") {
  ServerFixture fixture(test_options(), kvstore::RetentionPolicy{2, 0});
  TestClient client = fixture.client();
  const auto first = json_of(client.put("/v1/kv/t", "one"));
  const auto second = json_of(client.put("/v1/kv/t", "two"));
  const Version v1 = first["version"];
  const Version v2 = second["version"];
  REQUIRE(client.get("/v1/kv/t?version=" + std::to_string(v1)).body() == "one");
  REQUIRE(client.get("/v1/kv/t?version=" + std::to_string(v2 - 1)).body() == "one");
  REQUIRE(client.get("/v1/kv/t?version=" + std::to_string(v2)).body() == "two");
  require_error(client.get("/v1/kv/t?version=" + std::to_string(v1 - 1)), 404, "not_found");
  const std::uint64_t t1 = first["timestamp_us"];
  const Response at = client.get("/v1/kv/t?at=" + std::to_string(t1));
  REQUIRE(at.result_int() == 200);
  REQUIRE(header_of(at, "Squall-Version").size() > 0);
  require_error(client.get("/v1/kv/t?at=1"), 404, "not_found");

  client.put("/v1/kv/t", "three");
  fixture.backend.apply_retention();  // keeps the two newest versions
  require_error(client.get("/v1/kv/t?version=" + std::to_string(v1)), 410, "gone");
  REQUIRE(client.get("/v1/kv/t?version=" + std::to_string(v2)).body() == "two");
}

TEST_CASE("bad read parameters are 400") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  client.put("/v1/kv/p", "x");
  require_error(client.get("/v1/kv/p?version=abc"), 400, "bad_request");
  require_error(client.get("/v1/kv/p?version=-1"), 400, "bad_request");
  require_error(client.get("/v1/kv/p?version=18446744073709551616"), 400, "bad_request");
  require_error(client.get("/v1/kv/p?version=1&at=1"), 400, "bad_request");
  require_error(client.get("/v1/kv/p?version=1&version=2"), 400, "bad_request");
  require_error(client.get("/v1/kv/p?consistency=eventual"), 400, "bad_request");
  require_error(client.get("/v1/kv/p?x=%zz"), 400, "bad_request");
  REQUIRE(client.get("/v1/kv/p?consistency=linearizable").result_int() == 200);
  REQUIRE(client.get("/v1/kv/p?unknown=1").result_int() == 200);  // unknown ones are ignored
  REQUIRE(client.get("/v1/kv/p?version=18446744073709551615").body() == "x");
}

TEST_CASE("list: byte order, prefix, pagination with next, values, limits") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  for (const char* key : {"b/2", "a", "b/1", "b/3", "c", "b/10"}) {
    REQUIRE(client.put(std::string("/v1/kv/") + key, std::string("v-") + key).result_int() ==
            201);
  }
  client.del("/v1/kv/b/3");
  auto page = json_of(client.get("/v1/kv?prefix=b/&limit=2"));
  REQUIRE(page["items"].size() == 2);
  REQUIRE(page["items"][0]["key"] == "b/1");
  REQUIRE(page["items"][1]["key"] == "b/10");
  REQUIRE(page["items"][0]["size"] == 5);
  REQUIRE(page["items"][0]["version"].is_number_unsigned());
  REQUIRE(page["items"][0]["timestamp_us"].is_number_unsigned());
  REQUIRE_FALSE(page["items"][0].contains("value_base64"));
  REQUIRE(page["next"] == "b/10");
  page = json_of(client.get("/v1/kv?prefix=b%2F&limit=2&start_after=b/10&values=true"));
  REQUIRE(page["items"].size() == 1);  // b/3 is deleted
  REQUIRE(page["items"][0]["key"] == "b/2");
  REQUIRE(page["items"][0]["value_base64"] == base64_encode("v-b/2"));
  REQUIRE(page["next"].is_null());

  const auto all = json_of(client.get("/v1/kv"));
  REQUIRE(all["items"].size() == 5);
  REQUIRE(all["next"].is_null());
  REQUIRE(all["items"][0]["key"] == "a");
  REQUIRE(all["items"][4]["key"] == "c");

  require_error(client.get("/v1/kv?limit=0"), 400, "bad_request");
  require_error(client.get("/v1/kv?limit=1001"), 400, "bad_request");  // max is 1000 here
  require_error(client.get("/v1/kv?limit=x"), 400, "bad_request");
  require_error(client.get("/v1/kv?values=maybe"), 400, "bad_request");
  REQUIRE(client.get("/v1/kv?limit=1000").result_int() == 200);
}

TEST_CASE("list at a past version shows that snapshot") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  const Version v1 = json_of(client.put("/v1/kv/x1", "a"))["version"];
  client.put("/v1/kv/x2", "b");
  client.del("/v1/kv/x1");
  auto page = json_of(client.get("/v1/kv?prefix=x&version=" + std::to_string(v1)));
  REQUIRE(page["items"].size() == 1);
  REQUIRE(page["items"][0]["key"] == "x1");
  page = json_of(client.get("/v1/kv?prefix=x"));
  REQUIRE(page["items"].size() == 1);
  REQUIRE(page["items"][0]["key"] == "x2");
}

TEST_CASE("history: newest first, ops, pagination with before/next, 404 for unknown keys") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  const Version v1 = json_of(client.put("/v1/kv/h/k", "1"))["version"];
  const Version v2 = json_of(client.put("/v1/kv/h/k", "22"))["version"];
  const Version v3 = json_of(client.del("/v1/kv/h/k"))["version"];
  auto page = json_of(client.get("/v1/history/h/k?limit=2"));
  REQUIRE(page["key"] == "h/k");
  REQUIRE(page["versions"].size() == 2);
  REQUIRE(page["versions"][0]["version"] == v3);
  REQUIRE(page["versions"][0]["op"] == "delete");
  REQUIRE(page["versions"][1]["version"] == v2);
  REQUIRE(page["versions"][1]["op"] == "put");
  REQUIRE(page["versions"][1]["size"] == 2);
  REQUIRE(page["versions"][1]["timestamp_us"].is_number_unsigned());
  REQUIRE(page["next"] == v2);
  page = json_of(client.get("/v1/history/h%2Fk?before=" + std::to_string(v2)));
  REQUIRE(page["versions"].size() == 1);
  REQUIRE(page["versions"][0]["version"] == v1);
  REQUIRE(page["next"].is_null());

  require_error(client.get("/v1/history/unknown"), 404, "not_found");
  require_error(client.get("/v1/history/"), 400, "bad_request");
  require_error(client.get("/v1/history/h/k?limit=0"), 400, "bad_request");
  require_error(client.get("/v1/history/h/k?before=x"), 400, "bad_request");
}

TEST_CASE("an unavailable backend answers 503 with Retry-After") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  client.put("/v1/kv/u", "x");
  fixture.backend.set_unavailable(true);
  for (const Response& response :
       {client.put("/v1/kv/u", "y"), client.get("/v1/kv/u"), client.del("/v1/kv/u"),
        client.get("/v1/kv"), client.get("/v1/history/u"), client.get("/v1/cluster")}) {
    require_error(response, 503, "unavailable");
    REQUIRE(header_of(response, "Retry-After") == "7");
  }
  fixture.backend.set_unavailable(false);
  REQUIRE(client.get("/v1/kv/u").body() == "x");  // the refused put changed nothing
}

}  // namespace squall::server::testing
