// make_fuzz_seeds <fuzz/corpus>: writes the seed corpora of the fuzz targets from Squall's own
// encoders (one valid example of each format and message kind, so the fuzzer starts from
// well-formed input), as <dir>/<target>/seed-<name>. Every binary seed starts with the mode
// byte 1 (fix CRCs/MACs up), which the binary targets read first. Rerun after a format change.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "common/crc32c.hpp"
#include "config/config.hpp"
#include "core/membership_wire.hpp"
#include "core/state_transfer.hpp"
#include "core/view_log.hpp"
#include "fabric/bootstrap_wire.hpp"
#include "kvstore/checkpoint.hpp"
#include "kvstore/kv_codec.hpp"
#include "kvstore/record.hpp"

namespace {

using namespace squall;
namespace fs = std::filesystem;

fs::path g_root;

void write(const std::string& target, const std::string& name, std::string_view bytes) {
  fs::create_directories(g_root / target);
  std::ofstream out(g_root / target / ("seed-" + name), std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_binary(const std::string& target, const std::string& name, const Bytes& bytes) {
  std::string text(1, '\x01');
  text += as_string_view(bytes);
  write(target, name, text);
}

void append(Bytes& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

Bytes record(Version version, kvstore::Op op, std::string_view key, std::string_view value) {
  kvstore::RecordFields fields{version, version * 1000, op, key, as_bytes(value)};
  kvstore::EncodedRecord encoded;
  kvstore::encode_record(fields, encoded);
  Bytes out;
  append(out, encoded.head);
  append(out, as_bytes(key));
  append(out, encoded.mid);
  append(out, as_bytes(value));
  return out;
}

void storage_seeds() {
  using kvstore::Op;
  write_binary("record", "put", record(7, Op::put, "users/42", "hello"));
  write_binary("record", "gap", record(9, Op::history_gap, "k", ""));
  Bytes records = record(1, Op::put, "a", "1");
  append(records, record(2, Op::del, "a", ""));
  append(records, record(3, Op::put, "b/c", "value"));
  write_binary("segment_scan", "three", records);
  Bytes segment;
  append(segment, kvstore::encode_segment_header(1));
  append(segment, records);
  Bytes second;
  append(second, kvstore::encode_segment_header(4));
  append(second, record(4, Op::put, "d", "4"));
  write_binary("log_recovery", "one-segment", segment);
  append(segment, as_bytes("|SEG|"));
  append(segment, second);
  write_binary("log_recovery", "two-segments", segment);

  kvstore::CheckpointLimits limits;
  limits.max_key_bytes = 64;
  limits.max_value_bytes = 1024;
  limits.chunk_bytes = 256;
  kvstore::CheckpointWriter writer({10, 10000, 2}, limits);
  (void)writer.add({0, 3, 3000, "a", as_bytes("one")});
  (void)writer.add({0, 5, 5000, "b", as_bytes("two")});
  (void)writer.add({1, 9, 9000, "pool1/x", as_bytes("three")});
  write_binary("checkpoint", "two-pools", writer.finish());
  write_binary("checkpoint", "empty", kvstore::CheckpointWriter({0, 0, 1}, limits).finish());

  // kv_update reads the payload as it is (no mode byte).
  kvstore::KvCodecLimits codec;
  codec.max_key_bytes = 64;
  codec.max_value_bytes = 1024;
  kvstore::KvUpdate put{kvstore::KvOp::put, kvstore::KvCondition::if_version, 4,
                        {NodeId{1}, 99}, "users/42", as_bytes("hello")};
  write("kv_update", "put", as_string_view(kvstore::encode_update(put, codec)));
  kvstore::KvUpdate barrier{kvstore::KvOp::barrier, kvstore::KvCondition::none, 0,
                            {NodeId{2}, 7}, {}, {}};
  write("kv_update", "barrier", as_string_view(kvstore::encode_update(barrier, codec)));
}

core::Member member(std::uint32_t id) {
  core::Member result;
  result.id = NodeId{id};
  result.address = {"127.0.0.1", static_cast<std::uint16_t>(7000 + id)};
  result.membership_port = static_cast<std::uint16_t>(7100 + id);
  result.rest = {"127.0.0.1", static_cast<std::uint16_t>(8080 + id)};
  return result;
}

core::ViewRecord view_record() {
  auto view = core::View::make(ViewId{2}, {member(0), member(1), member(2)}, {1, 3});
  if (!view.is_ok()) {
    std::cerr << "make_fuzz_seeds: " << view.status().message() << "\n";
    std::exit(1);
  }
  return core::ViewRecord::of(view.value());
}

void core_seeds() {
  const core::ViewRecord view = view_record();
  Bytes log = core::encode_view_log_record(view);
  append(log, core::encode_view_log_record(core::TrimRecord{ViewId{2}, ShardId{0}, {4, 5, 3}}));
  write_binary("view_log", "view-and-trim", log);
  write_binary("view_log", "bare-view", core::encode_view_record(view));

  const Bytes encoded_view = core::encode_view_record(view);
  core::JoinRequest join{"squall", core::kMembershipProtocol, member(3)};
  core::JoinAccepted accepted{encoded_view, {}, {{ShardId{0}, NodeId{1}}}};
  core::RestartRequest restart{"squall", core::kMembershipProtocol, member(1), encoded_view,
                               {{ShardId{0}, 77}}};
  const std::pair<std::string, core::MembershipMessage> messages[] = {
      {"join", join},
      {"accepted", accepted},
      {"redirect", core::Redirect{"127.0.0.1", 7100}},
      {"retry", core::Retry{"view change under way"}},
      {"refused", core::Refused{"wrong cluster"}},
      {"leave", core::LeaveRequest{"squall", NodeId{2}}},
      {"leave-done", core::LeaveDone{}},
      {"restart", restart}};
  for (const auto& [name, message] : messages) {
    write_binary("membership", name, core::encode_membership_message(message));
  }
}

void transfer_seeds() {
  using core::TransferKind;
  auto message = [](TransferKind kind, std::uint32_t shard) {
    core::TransferMessage result;
    result.kind = kind;
    result.shard = ShardId{shard};
    result.view = ViewId{3};
    return result;
  };
  auto plan = message(TransferKind::plan, 1);
  plan.view_start = 30;
  plan.blob_bytes = 0;
  auto batch = message(TransferKind::batch, 1);
  auto update_blob = core::encode_update_batch(
      std::vector<core::LoggedUpdate>{{6, 106, NodeId{2}, Bytes(8, std::byte{9})},
                                      {7, 107, NodeId{2}, Bytes(8, std::byte{9})}});
  batch.blob_bytes = update_blob.size();
  auto chunk = message(TransferKind::chunk, 1);
  chunk.bytes = update_blob;
  auto start = message(TransferKind::start, 0);
  start.value = 3;
  auto log_request = message(TransferKind::log_request, 0);
  log_request.value = 10;
  auto chunk_request = message(TransferKind::chunk_request, 0);
  // Messages separated by "|MSG|", each after a sender byte (0: peer 2).
  Bytes session;
  for (const auto& one : {plan, batch, chunk, start, log_request, chunk_request}) {
    if (!session.empty()) append(session, as_bytes("|MSG|"));
    session.push_back(std::byte{0});
    append(session, core::encode_transfer(one));
  }
  write_binary("transfer", "session", session);
  write_binary("transfer", "update-batch", update_blob);
  auto not_ready = message(TransferKind::not_ready, 1);
  Bytes refused{std::byte{0}};
  append(refused, core::encode_transfer(not_ready));
  write_binary("transfer", "not-ready", refused);
}

void hello_seeds() {
  fabric::Hello hello;
  hello.from = NodeId{1};
  hello.to = NodeId{2};
  hello.channel = 1;
  hello.nonce = 0x1234;
  hello.rx_depth = 64;
  hello.max_message_bytes = 65536;
  hello.provider = "tcp";
  hello.endpoint_name = Bytes(16, std::byte{0x42});
  hello.control = {0, 4096, 17, 0};
  hello.regions = {{1, 8192, 18, 0}, {2, 1 << 20, 19, 0}};
  write_binary("hello", "two-regions", fabric::encode_hello(hello));
}

void text_seeds() {
  for (const auto& entry : fs::directory_iterator(g_root.parent_path().parent_path() / "deploy" /
                                                  "config")) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write("config", entry.path().stem().string(), text);
  }
  config::Config minimal;
  minimal.node.id = NodeId{1};
  minimal.node.data_dir = "/var/lib/squall";
  write("config", "effective", config::to_yaml(minimal));

  write("rest_parse", "key", "\x0e" "users%2F42%20caf%C3%A9");
  write("rest_parse", "query", "\x10" "prefix=a%2Fb&limit=10&values=true&version=7");
  write("rest_parse", "if-match", "\x02" "\"12\"\n*");
  write("rest_request", "put-get",
        "PUT /v1/kv/users%2F42 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        "If-None-Match: *\r\n\r\nhello"
        "GET /v1/kv/users%2F42?consistency=stable HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /v1/history/users%2F42?limit=2 HTTP/1.1\r\nHost: a\r\n\r\n"
        "DELETE /v1/kv/users%2F42 HTTP/1.1\r\nHost: a\r\nIf-Match: \"1\"\r\n\r\n");
  write("rest_request", "list",
        "GET /v1/kv?prefix=users%2F&limit=5&values=true&start_after=a HTTP/1.1\r\n"
        "Host: a\r\n\r\n");
  write("rest_request", "ops",
        "GET /v1/cluster HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n"
        "GET /readyz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n");
  write("rest_request", "watch",
        "GET /v1/watch?prefix=users%2F&since=3 HTTP/1.1\r\nHost: a\r\n"
        "Last-Event-ID: 0:5\r\n\r\n");
  write("rest_request", "chunked",
        "PUT /v1/kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_fuzz_seeds <source>/fuzz/corpus\n";
    return 2;
  }
  g_root = fs::absolute(argv[1]);
  storage_seeds();
  core_seeds();
  transfer_seeds();
  hello_seeds();
  text_seeds();
  return 0;
}
