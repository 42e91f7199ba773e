#include <catch2/catch.hpp>

#include "common/status.hpp"
#include "common/version.hpp"

using namespace squall;

TEST_CASE("Status carries code and message, with context") {
  Status ok;
  CHECK(ok.is_ok());
  CHECK(ok.to_string() == "ok");
  Status error = corruption("bad crc at offset 40");
  CHECK_FALSE(error.is_ok());
  CHECK(error.code() == Code::corruption);
  CHECK(error.with_context("segment 3").to_string() == "corruption: segment 3: bad crc at offset 40");
}

TEST_CASE("Result holds a value or an error") {
  Result<int> good = 7;
  REQUIRE(good.is_ok());
  CHECK(*good == 7);
  Result<int> bad = not_found("no such key");
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::not_found);
}

TEST_CASE("SQUALL_TRY returns the first error") {
  int calls = 0;
  auto step = [&](bool fail) -> Status {
    ++calls;
    return fail ? io_error("disk") : Status::ok();
  };
  auto run = [&]() -> Status {
    SQUALL_TRY(step(false));
    SQUALL_TRY(step(true));
    SQUALL_TRY(step(false));
    return Status::ok();
  };
  CHECK(run().code() == Code::io_error);
  CHECK(calls == 2);
}

TEST_CASE("Version packs view and sequence and orders across views") {
  Version v = make_version(ViewId{3}, 17);
  CHECK(v == (3ULL << 32 | 17));
  CHECK(version_view(v) == ViewId{3});
  CHECK(version_sequence(v) == 17);
  CHECK(make_version(ViewId{4}, 0) > make_version(ViewId{3}, 0xffffffffU));
}
