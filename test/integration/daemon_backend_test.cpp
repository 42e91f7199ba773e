// ReplicatedBackend over an in-process group (FakeGroup): writes answered from apply() after
// persistence, preconditions, read barriers and their batching, stable/version/time reads,
// resubmission after a view change, timeouts, lists merged over shards, batched hand-offs
// (one task drains the queued submissions; one frontier move answers its writes together);
// and the forwarding codec and list merge on their own.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "server/forward_codec.hpp"
#include "server/forwarder.hpp"
#include "server/list_merge.hpp"
#include "test/integration/daemon_fake_group.hpp"

namespace squall::test {
namespace {

using server::Consistency;
using server::WriteOutcome;

// The group seen by the backend: FakeGroup, counting the tasks one thread posts.
class CountingPort final : public server::GroupPort {
 public:
  explicit CountingPort(FakeGroup& group) : group_(group) {}
  // Counts post() calls made from the calling thread from now on.
  void count_this_thread() {
    counted_.store(std::this_thread::get_id());
    posts_.store(0);
  }
  std::uint64_t posts() const { return posts_.load(); }

  Status post(std::function<void()> task) override {
    if (counted_.load() == std::this_thread::get_id()) posts_.fetch_add(1);
    return group_.post(std::move(task));
  }
  Result<std::uint64_t> send(ShardId shard, std::span<const std::byte> payload) override {
    return group_.send(shard, payload);
  }
  bool serves(ShardId shard) const override { return group_.serves(shard); }
  ViewId view_id() const override { return group_.view_id(); }
  std::vector<std::string> rest_addresses(ShardId shard) const override {
    return group_.rest_addresses(shard);
  }

 private:
  FakeGroup& group_;
  std::atomic<std::thread::id> counted_{};
  std::atomic<std::uint64_t> posts_{0};
};

struct Fixture {
  explicit Fixture(std::uint32_t shards = 1, std::uint32_t timeout_ms = 5000)
      : group(all_shards(shards)), port(group) {
    server::BackendOptions options;
    options.self = NodeId{1};
    options.layout.shards = shards;
    options.layout.pools = {config::PoolConfig{"", config::Storage::volatile_, {}, {}}};
    options.request_timeout_ms = timeout_ms;
    options.tick_ms = 5;
    backend = std::make_unique<server::ReplicatedBackend>(
        options, port, SystemClock::instance(), nullptr, nullptr, [] { return true; },
        nullptr);
    group.connect(backend.get());
    for (std::uint32_t i = 0; i < shards; ++i) {
      kvstore::KvStateMachineOptions machine_options;
      machine_options.pools = options.layout.pools;
      machine_options.sync_thread = false;
      auto machine = kvstore::KvStateMachine::open(machine_options, nullptr,
                                                   SystemClock::instance());
      REQUIRE(machine.is_ok());
      replicas.push_back(std::make_unique<server::ShardReplica>(
          ShardId{i}, std::move(machine).value(), nullptr));
      group.add_replica(replicas.back().get());
    }
    group.start();
    group.run([this] {
      for (auto& replica : replicas) backend->attach(*replica);
    });
    backend->start();
  }
  ~Fixture() {
    group.stop();
    backend->fail_all();
  }

  static std::vector<ShardId> all_shards(std::uint32_t shards) {
    std::vector<ShardId> out;
    for (std::uint32_t i = 0; i < shards; ++i) out.push_back(ShardId{i});
    return out;
  }

  template <typename T, typename Call>
  static Result<T> wait(Call call) {
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    call([promise](Result<T> result) { promise->set_value(std::move(result)); });
    return future.get();
  }
  template <typename T, typename Call>
  static std::future<Result<T>> later(Call call) {
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    call([promise](Result<T> result) { promise->set_value(std::move(result)); });
    return future;
  }

  Result<server::WriteResult> put(std::string key, std::string value,
                                  server::Precondition precondition = {}) {
    return wait<server::WriteResult>([&](auto done) {
      backend->put(server::PutRequest{std::move(key), std::move(value), precondition}, done);
    });
  }
  Result<server::WriteResult> remove(std::string key, server::Precondition precondition = {}) {
    return wait<server::WriteResult>([&](auto done) {
      backend->remove(server::DeleteRequest{std::move(key), precondition}, done);
    });
  }
  Result<server::GetResult> get(std::string key, server::ReadPoint at = server::ReadPoint{},
                                Consistency consistency = Consistency::linearizable) {
    return wait<server::GetResult>([&](auto done) {
      backend->get(server::GetRequest{std::move(key), at, consistency}, done);
    });
  }

  // Holds the progress thread in a task until the returned promise is set.
  std::shared_ptr<std::promise<void>> hold_progress() {
    auto gate = std::make_shared<std::promise<void>>();
    auto entered = std::make_shared<std::promise<void>>();
    auto held = entered->get_future();
    REQUIRE(group.post([gate, entered] {
                   entered->set_value();
                   gate->get_future().wait();
                 }).is_ok());
    held.wait();
    return gate;
  }

  FakeGroup group;
  CountingPort port;
  std::unique_ptr<server::ReplicatedBackend> backend;
  std::vector<std::unique_ptr<server::ShardReplica>> replicas;
};

// A listening socket on 127.0.0.1 (port from the kernel). Connections complete (the kernel
// accepts them into the backlog) but nothing answers unless serve_once() runs.
struct Listener {
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(listen(fd, 16) == 0);
    socklen_t size = sizeof(address);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port = ntohs(address.sin_port);
  }
  ~Listener() { close(fd); }
  std::string target() const { return fmt::format("127.0.0.1:{}", port); }
  // Accepts one connection, reads the request head and answers 200 "ok".
  void serve_once() {
    const int client = accept(fd, nullptr, nullptr);
    if (client < 0) return;
    std::string head;
    char buffer[512];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t got = read(client, buffer, sizeof(buffer));
      if (got <= 0) break;
      head.append(buffer, static_cast<std::size_t>(got));
    }
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)!write(client, answer.data(), answer.size());
    close(client);
  }
  int fd = -1;
  std::uint16_t port = 0;
};

server::Precondition if_version(Version version) {
  return {server::Precondition::Kind::version_is, version};
}

}  // namespace

TEST_CASE("Backend: puts, reads at every consistency, deletes") {
  Fixture fixture;
  auto first = fixture.put("a", "one");
  REQUIRE(first.is_ok());
  CHECK(first->outcome == WriteOutcome::written);
  CHECK(first->created);
  auto second = fixture.put("a", "two");
  REQUIRE(second.is_ok());
  CHECK_FALSE(second->created);
  CHECK(second->version > first->version);
  CHECK(second->timestamp_us >= first->timestamp_us);

  auto latest = fixture.get("a");
  REQUIRE(latest.is_ok());
  CHECK(latest->value == "two");
  CHECK(latest->version == second->version);
  auto stable = fixture.get("a", {}, Consistency::stable);
  REQUIRE(stable.is_ok());
  CHECK(stable->value == "two");
  auto old = fixture.get("a", server::ReadPoint::at_version(first->version));
  REQUIRE(old.is_ok());
  CHECK(old->value == "one");
  auto by_time = fixture.get("a", server::ReadPoint::at_time(first->timestamp_us));
  REQUIRE(by_time.is_ok());
  CHECK(by_time->version <= second->version);
  CHECK(fixture.get("b").status().code() == Code::not_found);

  auto removed = fixture.remove("a");
  REQUIRE(removed.is_ok());
  CHECK(removed->outcome == WriteOutcome::written);
  CHECK(fixture.get("a").status().code() == Code::not_found);
  auto again = fixture.remove("a");
  REQUIRE(again.is_ok());
  CHECK(again->outcome == WriteOutcome::not_found);
}

TEST_CASE("Backend: a time read waits until the shard has delivered past the time") {
  Fixture fixture;
  auto before = fixture.put("t", "old");
  REQUIRE(before.is_ok());
  // A time a little ahead: nothing delivered has passed it yet, so the read waits for
  // barriers stamped later, and then answers with what is final for that time.
  const std::uint64_t ahead_us = SystemClock::instance().wall_us() + 100'000;
  auto read = Fixture::later<server::GetResult>([&](auto done) {
    fixture.backend->get(
        server::GetRequest{"t", server::ReadPoint::at_time(ahead_us), Consistency::linearizable},
        done);
  });
  auto result = read.get();
  REQUIRE(result.is_ok());
  CHECK(result->value == "old");
  CHECK(SystemClock::instance().wall_us() >= ahead_us);
  auto after = fixture.put("t", "new");
  REQUIRE(after.is_ok());
  CHECK(after->timestamp_us > ahead_us);
}

TEST_CASE("Backend: preconditions are decided in the order") {
  Fixture fixture;
  auto created = fixture.put("k", "v", {server::Precondition::Kind::absent, 0});
  REQUIRE(created.is_ok());
  CHECK(created->outcome == WriteOutcome::written);
  auto refused = fixture.put("k", "w", {server::Precondition::Kind::absent, 0});
  REQUIRE(refused.is_ok());
  CHECK(refused->outcome == WriteOutcome::precondition_failed);
  CHECK(refused->current_version == created->version);
  auto stale = fixture.put("k", "w", if_version(created->version + 1));
  REQUIRE(stale.is_ok());
  CHECK(stale->outcome == WriteOutcome::precondition_failed);
  auto swapped = fixture.put("k", "w", if_version(created->version));
  REQUIRE(swapped.is_ok());
  CHECK(swapped->outcome == WriteOutcome::written);
  auto missing = fixture.remove("nothing", {server::Precondition::Kind::exists, 0});
  REQUIRE(missing.is_ok());
  CHECK(missing->outcome == WriteOutcome::precondition_failed);
  CHECK_FALSE(missing->current_version.has_value());
}

TEST_CASE("Backend: one barrier serves every read that arrived before it was sent") {
  Fixture fixture;
  REQUIRE(fixture.put("x", "1").is_ok());
  const std::uint64_t before = fixture.group.delivered_barriers();
  fixture.group.pause(true);
  std::vector<std::future<Result<server::GetResult>>> reads;
  for (int i = 0; i < 8; ++i) {
    reads.push_back(Fixture::later<server::GetResult>([&](auto done) {
      fixture.backend->get(server::GetRequest{"x", {}, Consistency::linearizable}, done);
    }));
  }
  // Every read is queued on the progress thread before delivery resumes.
  fixture.group.run([] {});
  fixture.group.pause(false);
  for (auto& read : reads) {
    auto result = read.get();
    REQUIRE(result.is_ok());
    CHECK(result->value == "1");
  }
  // The first read sent a barrier; the seven after it share at most one more.
  CHECK(fixture.group.delivered_barriers() - before <= 2);
}

TEST_CASE("Backend: a write discarded by a view change is sent again and applies once") {
  Fixture fixture;
  fixture.group.pause(true);
  auto write = Fixture::later<server::WriteResult>([&](auto done) {
    fixture.backend->put(server::PutRequest{"v", "once", {}}, done);
  });
  fixture.group.run([] {});  // queued in the group, not delivered
  fixture.group.change_view();
  fixture.group.pause(false);
  auto result = write.get();
  REQUIRE(result.is_ok());
  CHECK(result->outcome == WriteOutcome::written);
  CHECK(version_view(result->version) == ViewId{2});
  auto history = Fixture::wait<server::HistoryResult>([&](auto done) {
    fixture.backend->history(server::HistoryRequest{"v", std::nullopt, 10}, done);
  });
  REQUIRE(history.is_ok());
  CHECK(history->versions.size() == 1);
}

TEST_CASE("Backend: requests that cannot complete time out") {
  Fixture fixture(1, 100);
  fixture.group.pause(true);
  CHECK(fixture.put("t", "v").status().code() == Code::timed_out);
  CHECK(fixture.get("t").status().code() == Code::timed_out);
  // A stable read needs no coordination.
  CHECK(fixture.get("t", {}, Consistency::stable).status().code() == Code::not_found);
  fixture.group.pause(false);
}

TEST_CASE("Backend: lists merge shards in key order with pagination") {
  Fixture fixture(3);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(fixture.put(fmt::format("key{:02}", i), "v").is_ok());
  }
  std::vector<std::string> keys;
  std::string start_after;
  for (int page = 0; page < 10; ++page) {
    server::ListRequest request;
    request.prefix = "key";
    request.start_after = start_after;
    request.limit = 6;
    auto result = Fixture::wait<server::ListResult>(
        [&](auto done) { fixture.backend->list(request, done); });
    REQUIRE(result.is_ok());
    for (const auto& item : result->items) keys.push_back(item.key);
    if (!result->next) break;
    start_after = *result->next;
  }
  REQUIRE(keys.size() == 20);
  for (int i = 0; i < 20; ++i) CHECK(keys[i] == fmt::format("key{:02}", i));
}

TEST_CASE("Backend: requests queued together reach the progress thread in one task") {
  Fixture fixture;
  auto gate = fixture.hold_progress();
  fixture.port.count_this_thread();
  std::vector<std::future<Result<server::WriteResult>>> writes;
  for (int i = 0; i < 20; ++i) {
    writes.push_back(Fixture::later<server::WriteResult>([&](auto done) {
      fixture.backend->put(server::PutRequest{fmt::format("q{}", i), "v", {}}, done);
    }));
  }
  auto read = Fixture::later<server::GetResult>([&](auto done) {
    fixture.backend->get(server::GetRequest{"q0", {}, Consistency::linearizable}, done);
  });
  // The first request posted the drain task; the others joined its queue.
  CHECK(fixture.port.posts() == 1);
  gate->set_value();
  for (auto& write : writes) {
    auto result = write.get();
    REQUIRE(result.is_ok());
    CHECK(result->outcome == WriteOutcome::written);
  }
  // Submitted after the put of q0 (both in one batch, in order): the read sees it.
  auto value = read.get();
  REQUIRE(value.is_ok());
  CHECK(value->value == "v");
  // The queue emptied: the next request posts again.
  REQUIRE(fixture.put("next", "v").is_ok());
  CHECK(fixture.port.posts() == 2);
}

TEST_CASE("Backend: writes one frontier move completes are answered together, off the "
          "progress thread") {
  Fixture fixture;
  std::thread::id progress;
  fixture.group.run([&] { progress = std::this_thread::get_id(); });
  fixture.group.pause(true);
  std::mutex mutex;
  std::vector<std::thread::id> answered_on;
  std::vector<std::future<Result<server::WriteResult>>> writes;
  for (int i = 0; i < 10; ++i) {
    writes.push_back(Fixture::later<server::WriteResult>([&](auto done) {
      fixture.backend->put(server::PutRequest{fmt::format("a{}", i), "v", {}},
                           [&, done](Result<server::WriteResult> result) {
                             {
                               std::lock_guard lock(mutex);
                               answered_on.push_back(std::this_thread::get_id());
                             }
                             done(std::move(result));
                           });
    }));
  }
  fixture.group.run([] {});  // every write is queued in the group before delivery resumes
  fixture.group.pause(false);
  for (auto& write : writes) REQUIRE(write.get().is_ok());
  std::lock_guard lock(mutex);
  REQUIRE(answered_on.size() == 10);
  for (std::thread::id thread : answered_on) {
    CHECK(thread != progress);
    CHECK(thread == answered_on.front());  // one task ran them all
  }
}

TEST_CASE("Backend: requests still queued when the group stops are answered unavailable") {
  Fixture fixture;
  auto gate = fixture.hold_progress();
  std::vector<std::future<Result<server::WriteResult>>> writes;
  for (int i = 0; i < 5; ++i) {
    writes.push_back(Fixture::later<server::WriteResult>([&](auto done) {
      fixture.backend->put(server::PutRequest{fmt::format("s{}", i), "v", {}}, done);
    }));
  }
  // Stop the group while its progress thread is held: the drain task never runs.
  std::thread stopper([&] { fixture.group.stop(); });
  while (fixture.group.post([] {}).is_ok()) std::this_thread::yield();
  gate->set_value();
  stopper.join();
  // A request after the stop fails at once, on the caller's thread.
  auto late = Fixture::wait<server::WriteResult>(
      [&](auto done) { fixture.backend->put(server::PutRequest{"late", "v", {}}, done); });
  CHECK(late.status().code() == Code::unavailable);
  fixture.backend->fail_all();
  for (auto& write : writes) {
    REQUIRE(write.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(write.get().status().code() == Code::unavailable);
  }
  CHECK(fixture.backend->in_flight() == 0);
}

TEST_CASE("Backend: a shard this node does not serve, without a forwarder, is unavailable") {
  FakeGroup other({});
  server::BackendOptions options;
  options.self = NodeId{2};
  server::ReplicatedBackend backend(options, other, SystemClock::instance(), nullptr, nullptr,
                                    nullptr, nullptr);
  other.connect(&backend);
  other.start();
  auto result = Fixture::wait<server::WriteResult>(
      [&](auto done) { backend.put(server::PutRequest{"k", "v", {}}, done); });
  CHECK(result.status().code() == Code::unavailable);
  CHECK_FALSE(backend.ready());
  other.stop();
}

TEST_CASE("Forwarder: a refused and a silent target are passed over for one that answers") {
  server::ForwarderOptions options;
  options.timeout_ms = 2000;
  options.max_in_flight = 16;
  options.max_body_bytes = 1 << 20;
  auto forwarder = server::Forwarder::start(options);
  REQUIRE(forwarder.is_ok());
  std::string refused;
  {
    Listener closed;  // its port, once closed, refuses connections
    refused = closed.target();
  }
  Listener silent;
  Listener answering;
  std::thread server([&] { answering.serve_once(); });
  auto answer = Fixture::wait<server::HttpResponse>([&](auto done) {
    forwarder.value()->send({refused, silent.target(), answering.target()},
                            server::forward_request(server::GetRequest{"k", {}, {}}), done);
  });
  server.join();
  REQUIRE(answer.is_ok());
  CHECK(answer->result_int() == 200);
  CHECK(answer->body() == "ok");

  // Nobody answers: the request ends (timed out or unavailable), never hangs.
  auto nobody = Fixture::wait<server::HttpResponse>([&](auto done) {
    forwarder.value()->send({silent.target(), refused},
                            server::forward_request(server::GetRequest{"k", {}, {}}), done);
  });
  REQUIRE_FALSE(nobody.is_ok());
  CHECK((nobody.status().code() == Code::timed_out ||
         nobody.status().code() == Code::unavailable));
  forwarder.value()->stop();
  auto stopped = Fixture::wait<server::HttpResponse>([&](auto done) {
    forwarder.value()->send({answering.target()},
                            server::forward_request(server::GetRequest{"k", {}, {}}), done);
  });
  CHECK(stopped.status().code() == Code::unavailable);
}

TEST_CASE("List merge cuts at a source that stopped early") {
  auto item = [](std::string key) { return server::ListItem{std::move(key), 1, 1, 1, {}}; };
  std::vector<server::ListSource> sources;
  sources.push_back({{item("a"), item("d"), item("f")}, std::nullopt});
  sources.push_back({{item("b"), item("c")}, std::string("c")});
  auto merged = server::merge_list_pages(std::move(sources), 10);
  REQUIRE(merged.items.size() == 3);
  CHECK(merged.items[2].key == "c");
  CHECK(merged.next == std::optional<std::string>("c"));
  std::vector<server::ListSource> done;
  done.push_back({{item("a"), item("b")}, std::nullopt});
  auto all = server::merge_list_pages(std::move(done), 2);
  CHECK(all.items.size() == 2);
  CHECK_FALSE(all.next.has_value());
}

TEST_CASE("Forward codec: answers parse back to typed results") {
  CHECK(server::base64_decode("aGVsbG8=").value() == "hello");
  CHECK(server::base64_decode("aGk=").value() == "hi");
  CHECK(server::base64_decode("").value().empty());
  CHECK_FALSE(server::base64_decode("a=bc").is_ok());
  server::HttpResponse conflict{boost::beast::http::status::precondition_failed, 11};
  conflict.body() = R"({"error":"precondition_failed","current_version":42})";
  auto parsed = server::parse_write_answer(conflict);
  REQUIRE(parsed.is_ok());
  CHECK(parsed->outcome == WriteOutcome::precondition_failed);
  CHECK(parsed->current_version == std::optional<Version>(42));
  server::HttpResponse busy{boost::beast::http::status::service_unavailable, 11};
  busy.body() = R"({"error":"unavailable","message":"no quorum"})";
  CHECK(server::parse_get_answer(busy).status().code() == Code::unavailable);
  auto request = server::forward_request(server::PutRequest{"a/b c", "v", if_version(7)});
  CHECK(std::string(request.target()) == "/v1/kv/a/b%20c");
  CHECK(std::string(request[boost::beast::http::field::if_match]) == "\"7\"");
}

}  // namespace squall::test
