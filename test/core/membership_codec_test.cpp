// Members with membership and REST endpoints; IPv4 literals; the standalone view record codec a
// leader uses to hand a joiner its views (round trip, every malformed input refused) and
// View::restore.
#include <catch2/catch.hpp>

#include <random>

#include "core/view_log.hpp"

using namespace squall;
using namespace squall::core;

namespace {

Member member(std::uint32_t id) {
  return {NodeId{id}, {"10.0.0." + std::to_string(id), static_cast<std::uint16_t>(7000 + id)},
          static_cast<std::uint16_t>(8000 + id),
          {id % 2 == 0 ? "10.1.0." + std::to_string(id) : "",
           static_cast<std::uint16_t>(id % 2 == 0 ? 9000 + id : 0)}};
}

View make_view(std::uint32_t id, std::uint32_t members, const View* previous = nullptr) {
  std::vector<Member> list;
  for (std::uint32_t i = 1; i <= members; ++i) list.push_back(member(i));
  return View::make(ViewId{id}, list, {.shards = 3, .replicas_per_shard = 2}, previous).value();
}

}  // namespace

TEST_CASE("IPv4 literals parse only in canonical form and format back") {
  REQUIRE(parse_ipv4("10.0.0.1") == 0x0A000001U);
  REQUIRE(parse_ipv4("255.255.255.255") == 0xFFFFFFFFU);
  REQUIRE(parse_ipv4("0.0.0.0") == 0U);
  REQUIRE(format_ipv4(0x0A000001U) == "10.0.0.1");
  for (const char* bad : {"", "10.0.0", "10.0.0.1.", "10.0.0.256", "010.0.0.1", "a.b.c.d",
                          "10..0.1", " 10.0.0.1", "10.0.0.1 ", "1000.0.0.1", "localhost",
                          "::1", "10.0.0.-1"}) {
    INFO(bad);
    REQUIRE_FALSE(parse_ipv4(bad).has_value());
  }
  std::mt19937_64 random(7);
  for (int i = 0; i < 1000; ++i) {
    auto address = static_cast<std::uint32_t>(random());
    REQUIRE(parse_ipv4(format_ipv4(address)) == address);
  }
}

TEST_CASE("validate_joiner refuses bad members") {
  REQUIRE(validate_joiner(member(1)).is_ok());
  REQUIRE(validate_joiner(member(2)).is_ok());
  Member zero = member(2);
  zero.id = NodeId{0};
  REQUIRE(validate_joiner(zero).is_ok());  // node id 0 is a valid node
  Member bad = member(2);
  bad.address.host = "node2";
  REQUIRE(validate_joiner(bad).code() == Code::invalid_argument);
  bad = member(2);
  bad.address.port = 0;
  REQUIRE(validate_joiner(bad).code() == Code::invalid_argument);
  bad = member(2);
  bad.rest.port = 0;
  REQUIRE(validate_joiner(bad).code() == Code::invalid_argument);
  bad = member(1);
  bad.rest.port = 80;  // a port without a host
  REQUIRE(validate_joiner(bad).code() == Code::invalid_argument);
  bad = member(2);
  bad.rest.host = "rest.example";
  REQUIRE(validate_joiner(bad).code() == Code::invalid_argument);
}

TEST_CASE("Member equality covers the membership and REST endpoints") {
  Member a = member(2);
  Member b = a;
  REQUIRE(a == b);
  b.membership_port = 1;
  REQUIRE_FALSE(a == b);
  b = a;
  b.rest.host = "10.9.9.9";
  REQUIRE_FALSE(a == b);
  b = a;
  b.rest.port = 1;
  REQUIRE_FALSE(a == b);
}

TEST_CASE("view records round-trip standalone and restore the recorded assignment") {
  View first = make_view(1, 3);
  View second = make_view(2, 6, &first);  // the assignment depends on the first view
  for (const View* view : {&first, &second}) {
    Bytes encoded = encode_view_record(ViewRecord::of(*view));
    auto decoded = decode_view_record(encoded);
    REQUIRE(decoded.is_ok());
    REQUIRE(*decoded == ViewRecord::of(*view));
    auto restored = restore_view(*decoded);
    REQUIRE(restored.is_ok());
    REQUIRE(restored->id() == view->id());
    REQUIRE(restored->members() == view->members());
    REQUIRE(restored->assignment() == view->assignment());
  }
  // Recomputing the second view without its history gives another assignment: a joiner must
  // use the recorded one.
  View fresh = make_view(2, 6);
  REQUIRE_FALSE(fresh.assignment() == second.assignment());
}

TEST_CASE("view record decoding refuses every truncation, extension and damaged byte") {
  View first = make_view(1, 3);
  View view = make_view(2, 5, &first);
  Bytes encoded = encode_view_record(ViewRecord::of(view));
  for (std::size_t length = 0; length < encoded.size(); ++length) {
    REQUIRE_FALSE(decode_view_record(std::span(encoded).first(length)).is_ok());
  }
  Bytes longer = encoded;
  longer.push_back(std::byte{0});
  REQUIRE_FALSE(decode_view_record(longer).is_ok());
  // A damaged byte either fails to decode or decodes to a valid, different record (a changed
  // host letter or port is still a well-formed view): never a crash, never the original.
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    for (std::uint8_t flip : {0x01, 0x80, 0xFF}) {
      Bytes damaged = encoded;
      damaged[i] ^= std::byte{flip};
      auto decoded = decode_view_record(damaged);
      if (decoded.is_ok()) {
        REQUIRE_FALSE(*decoded == ViewRecord::of(view));
        REQUIRE(restore_view(*decoded).is_ok());
      }
    }
  }
  std::mt19937_64 random(11);
  for (int i = 0; i < 2000; ++i) {
    Bytes noise(random() % 200);
    for (auto& b : noise) b = static_cast<std::byte>(random());
    (void)decode_view_record(noise);
  }
}

TEST_CASE("restore refuses assignments that do not fit the view") {
  View view = make_view(4, 5);
  ViewRecord record = ViewRecord::of(view);
  auto broken = [&](auto change) {
    ViewRecord copy = record;
    change(copy);
    return restore_view(copy).status().code();
  };
  REQUIRE(restore_view(record).is_ok());
  REQUIRE(broken([](ViewRecord& r) { r.assignment.shards.pop_back(); }) ==
          Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.assignment.shards[0][0] = NodeId{99}; }) ==
          Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.assignment.shards[1][1] = r.assignment.shards[1][0]; }) ==
          Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.assignment.shards[2].pop_back(); }) ==
          Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.assignment.under_replicated.push_back(ShardId{0}); }) ==
          Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.members.push_back(r.members[0]); }) ==
          Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.members.clear(); }) == Code::invalid_argument);
  REQUIRE(broken([](ViewRecord& r) { r.layout.shards = 0; }) == Code::invalid_argument);
  // Fewer members than replicas: every shard holds every member and is under-replicated.
  View small = View::make(ViewId{1}, {member(1)}, {.shards = 2, .replicas_per_shard = 3})
                   .value();
  REQUIRE(restore_view(ViewRecord::of(small)).is_ok());
}
