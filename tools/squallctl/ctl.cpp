#include "tools/squallctl/ctl.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/squallctl/commands.hpp"
#include "tools/squallctl/format.hpp"

namespace squall::ctl {

namespace {

constexpr std::size_t kMaxEndpoints = 64;

constexpr const char* kFooter = R"(
Endpoints: --endpoints host:port,..., else $SQUALL_ENDPOINTS, else the rest.listen of
--config FILE, else 127.0.0.1:8080. When an endpoint cannot be reached the next one is
tried. An endpoint written https://host:port (or --cacert/--cert, or a --config with
rest.tls) makes every endpoint TLS.

Token: --token-file FILE, else --token T (visible to other users of the machine: prefer
the file or the variable), else $SQUALL_TOKEN. Sent as "Authorization: Bearer <token>".

Exit codes:
  0  ok
  1  not found (404), or no longer retained (410)
  2  usage error, or the server refused the request as malformed (400, 413, 414, 431)
  3  precondition failed (412: --if-version, --if-absent, --if-exists)
  4  unavailable (503), no endpoint reachable, or timed out
  5  any other server error)";

// Everything the command line can set; each subcommand fills its part.
struct Cli {
  std::string endpoints;
  std::string config_file;
  bool json = false;
  std::uint32_t timeout_ms = 10000;
  std::string token;
  std::string token_file;
  std::string cacert;
  std::string cert;
  std::string key;
  WriteOptions write;  // put, cas, del
  bool if_absent = false;
  bool if_exists = false;
  GetOptions get;
  std::uint64_t get_version = 0;
  std::string get_at;
  ListOptions list;
  HistoryOptions history;
  WatchOptions watch;
  std::string watch_key;
  std::string watch_prefix;
  std::string watch_cursor;
  bool no_values = false;
  std::uint32_t watch_idle_s = 45;
  std::uint32_t watch_retry_s = 60;
};

void add_global_options(CLI::App& app, Cli& cli) {
  app.add_option("--endpoints", cli.endpoints, "REST endpoints, host:port,... (tried in order)");
  app.add_option("--config", cli.config_file,
                 "a node's config file: its rest.listen is the endpoint");
  app.add_flag("--json", cli.json, "machine-readable JSON output (one document per line)");
  app.add_option("--timeout-ms", cli.timeout_ms, "bound on connecting and on each request")
      ->check(CLI::Range(1U, 3600000U));
  app.add_option("--token", cli.token, "bearer token (prefer --token-file or $SQUALL_TOKEN)");
  app.add_option("--token-file", cli.token_file, "file holding the bearer token");
  app.add_option("--cacert", cli.cacert, "CA certificates (PEM) to verify the servers with");
  app.add_option("--cert", cli.cert, "client certificate (PEM), for rest.tls.client_certs");
  app.add_option("--key", cli.key, "the client certificate's private key (PEM)");
}

// "https://host:port" and "http://host:port" (an optional trailing '/') as "host:port";
// `https` is set when any entry was https.
std::string strip_schemes(std::string_view list, bool& https) {
  std::string out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    std::string_view item = list.substr(start, comma - start);
    if (item.starts_with("https://")) {
      https = true;
      item.remove_prefix(8);
    } else if (item.starts_with("http://")) {
      item.remove_prefix(7);
    }
    if (item.ends_with('/')) item.remove_suffix(1);
    if (!out.empty()) out += ',';
    out += item;
    start = comma + 1;
  }
  return out;
}

// The security options: TLS when asked for, and the token by precedence.
Result<ClientSecurity> client_security(const CLI::App& app, const Cli& cli, bool https) {
  ClientSecurity security;
  security.tls = https || app.count("--cacert") > 0 || app.count("--cert") > 0;
  if (app.count("--cacert") > 0) security.ca_file = cli.cacert;
  if (app.count("--cert") > 0) security.cert_file = cli.cert;
  if (app.count("--key") > 0) security.key_file = cli.key;
  if (app.count("--config") > 0) {
    auto loaded = config::load_config_file(cli.config_file);
    if (loaded.is_ok() && loaded->rest.tls) {
      security.tls = true;
      if (!security.ca_file) security.ca_file = loaded->rest.tls->ca_file;
    }
  }
  const char* env = std::getenv("SQUALL_TOKEN");
  if (app.count("--token-file") > 0) {
    std::ifstream in(cli.token_file, std::ios::binary);
    if (!in) return invalid_argument("cannot read --token-file " + cli.token_file);
    std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const char* space = " \t\r\n";
    token.erase(0, token.find_first_not_of(space));
    const std::size_t last = token.find_last_not_of(space);
    token.erase(last == std::string::npos ? 0 : last + 1);
    if (token.empty()) return invalid_argument("--token-file " + cli.token_file + " is empty");
    security.token = token;
  } else if (app.count("--token") > 0) {
    security.token = cli.token;
  } else if (env != nullptr && env[0] != '\0') {
    security.token = env;
  }
  return security;
}

void add_write_commands(CLI::App& app, Cli& cli) {
  auto* put = app.add_subcommand("put", "write a value (VALUE, or - to read it from stdin)");
  put->add_option("key", cli.write.key, "the key")->required();
  put->add_option("value", cli.write.value, "the value, or - for stdin")->required();

  auto* cas = app.add_subcommand(
      "cas", "write a value only if a condition holds (exactly one of the --if options)");
  cas->add_option("key", cli.write.key, "the key")->required();
  cas->add_option("value", cli.write.value, "the value, or - for stdin")->required();
  auto* group = cas->add_option_group("condition");
  group->add_option("--if-version", cli.write.version, "the key's current version is V");
  group->add_flag("--if-absent", cli.if_absent, "the key does not exist");
  group->add_flag("--if-exists", cli.if_exists, "the key exists");
  group->require_option(1);

  auto* del = app.add_subcommand("del", "delete a key (writes a tombstone version)");
  del->add_option("key", cli.write.key, "the key")->required();
  del->add_option("--if-version", cli.write.version, "only if the key's current version is V");
}

void add_read_commands(CLI::App& app, Cli& cli) {
  auto* get = app.add_subcommand("get", "print a key's value (raw bytes; --json adds metadata)");
  get->add_option("key", cli.get.key, "the key")->required();
  auto* version = get->add_option("--version", cli.get_version,
                                  "the value as of this shard version");
  get->add_option("--at", cli.get_at,
                  "the value as of this time: microseconds since the epoch, or "
                  "YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
      ->excludes(version);
  get->add_flag("--stable", cli.get.stable,
                "read the local replica's persisted state (faster, possibly stale)");

  auto* ls = app.add_subcommand("ls", "list keys in byte order (follows pagination)");
  ls->add_option("prefix", cli.list.prefix, "only keys starting with this");
  ls->add_option("--limit", cli.list.limit, "print at most N keys (default 100)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  ls->add_flag("--all", cli.list.all, "print every key");
  ls->add_option("--page-size", cli.list.page_size, "keys per request (default 1000)")
      ->check(CLI::Range(1U, 1000000U));

  auto* history = app.add_subcommand("history", "list a key's retained versions, newest first");
  history->add_option("key", cli.history.key, "the key")->required();
  history->add_option("--limit", cli.history.limit, "print at most N versions (default 100)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  history->add_option("--page-size", cli.history.page_size,
                      "versions per request (default 1000)")
      ->check(CLI::Range(1U, 1000000U));
}

void add_watch_command(CLI::App& app, Cli& cli) {
  auto* watch = app.add_subcommand(
      "watch", "print a key's or a prefix's writes as they happen; resumes after disconnects");
  auto* key = watch->add_option("key", cli.watch_key, "the key to watch");
  watch->add_option("--prefix", cli.watch_prefix, "watch every key starting with P")
      ->excludes(key);
  watch->add_option("--start", cli.watch.start, "oldest or now (default now)")
      ->check(CLI::IsMember({"oldest", "now"}));
  watch->add_option("--cursor", cli.watch_cursor, "resume after this event id");
  watch->add_flag("--no-values", cli.no_values, "omit values from the events");
  watch->add_option("--count", cli.watch.count, "exit after N events (default: never)");
  watch->add_option("--idle-timeout-s", cli.watch_idle_s,
                    "reconnect after this long without any byte (keepalives come every 15 s)")
      ->check(CLI::Range(1U, 3600U));
  watch->add_option("--retry-timeout-s", cli.watch_retry_s,
                    "give up when no stream could be opened for this long (exit 4)")
      ->check(CLI::Range(1U, 86400U));
}

void add_ops_commands(CLI::App& app) {
  app.add_subcommand("cluster", "show the view, its members and the shards' versions");
  app.add_subcommand("status", "ask every endpoint for healthz, readyz and its view; "
                               "exit 0 only if all are ready");
}

Result<config::HostPort> parse_endpoint(std::string_view text) {
  auto parsed = config::parse_host_port(text);
  if (!parsed.is_ok()) {
    return invalid_argument(fmt::format("bad endpoint '{}': {}", text, parsed.status().message()));
  }
  if (parsed->host == "0.0.0.0") parsed->host = "127.0.0.1";
  if (parsed->host == "::") parsed->host = "::1";
  return parsed;
}

Result<std::vector<config::HostPort>> parse_endpoint_list(std::string_view list) {
  std::vector<config::HostPort> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view item = list.substr(start, comma - start);
    if (!item.empty()) {
      auto endpoint = parse_endpoint(item);
      if (!endpoint.is_ok()) return endpoint.status();
      out.push_back(std::move(endpoint.value()));
    }
    start = comma + 1;
  }
  if (out.empty()) return invalid_argument("the endpoint list is empty");
  if (out.size() > kMaxEndpoints) {
    return invalid_argument(fmt::format("more than {} endpoints", kMaxEndpoints));
  }
  return out;
}

}  // namespace

Result<std::vector<config::HostPort>> resolve_endpoints(
    const std::optional<std::string>& flag, const std::optional<std::string>& env,
    const std::optional<std::string>& config_file) {
  if (flag) return parse_endpoint_list(*flag);
  if (env && !env->empty()) {
    auto list = parse_endpoint_list(*env);
    if (!list.is_ok()) return list.status().with_context("$SQUALL_ENDPOINTS");
    return list;
  }
  if (config_file) {
    auto loaded = config::load_config_file(*config_file);
    if (!loaded.is_ok()) return loaded.status();
    auto endpoint = parse_endpoint(loaded->rest.listen.to_string());
    if (!endpoint.is_ok()) return endpoint.status();
    return std::vector<config::HostPort>{endpoint.value()};
  }
  return std::vector<config::HostPort>{{"127.0.0.1", 8080}};
}

namespace {

// Fills the options the parser could not (conditions, optional values) and checks the
// rules it does not know. Returns a usage message, or empty.
std::string finish(const CLI::App& command, Cli& cli) {
  const std::string name = command.get_name();
  if (name == "cas") {
    cli.write.condition = cli.if_absent   ? Condition::absent
                          : cli.if_exists ? Condition::exists
                                          : Condition::version_is;
  }
  if (name == "del" && command.count("--if-version") > 0) {
    cli.write.condition = Condition::version_is;
  }
  if (name == "get") {
    if (command.count("--version") > 0) cli.get.version = cli.get_version;
    if (command.count("--at") > 0) cli.get.at = cli.get_at;
  }
  if (name == "watch") {
    if (command.count("key") > 0) cli.watch.key = cli.watch_key;
    if (command.count("--prefix") > 0) cli.watch.prefix = cli.watch_prefix;
    if (command.count("--cursor") > 0) cli.watch.cursor = cli.watch_cursor;
    if (!cli.watch.key && !cli.watch.prefix) return "watch needs a KEY or --prefix P";
    if (cli.watch.cursor && command.count("--start") > 0) {
      return "watch takes --start or --cursor, not both";
    }
    cli.watch.values = !cli.no_values;
    cli.watch.idle_timeout_ms = cli.watch_idle_s * 1000;
    cli.watch.retry_timeout_ms = cli.watch_retry_s * 1000;
  }
  return {};
}

int dispatch(const std::string& name, Context& context, Cli& cli) {
  if (name == "put" || name == "cas") return cmd_put(context, cli.write);
  if (name == "del") return cmd_delete(context, cli.write);
  if (name == "get") return cmd_get(context, cli.get);
  if (name == "ls") return cmd_list(context, cli.list);
  if (name == "history") return cmd_history(context, cli.history);
  if (name == "watch") return cmd_watch(context, cli.watch);
  if (name == "cluster") return cmd_cluster(context);
  return cmd_status(context, cli.timeout_ms);
}

}  // namespace

int run(const std::vector<std::string>& args, Streams streams,
        const std::optional<std::string>& env_endpoints) {
  CLI::App app("squallctl: the command-line client of a Squall cluster", "squallctl");
  app.footer(kFooter);
  app.fallthrough();
  app.require_subcommand(1);
  Cli cli;
  add_global_options(app, cli);
  add_write_commands(app, cli);
  add_read_commands(app, cli);
  add_watch_command(app, cli);
  add_ops_commands(app);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& error) {
    app.exit(error, streams.out, streams.err);
    return error.get_exit_code() == 0 ? kExitOk : kExitUsage;
  }
  const CLI::App& command = *app.get_subcommands().front();
  if (const std::string usage = finish(command, cli); !usage.empty()) {
    streams.err << "squallctl: " << usage << "\n";
    return kExitUsage;
  }
  bool https = false;
  std::optional<std::string> flag_endpoints;
  if (app.count("--endpoints") > 0) flag_endpoints = strip_schemes(cli.endpoints, https);
  std::optional<std::string> environment;
  if (env_endpoints && !flag_endpoints) environment = strip_schemes(*env_endpoints, https);
  auto endpoints = resolve_endpoints(
      flag_endpoints, environment,
      app.count("--config") > 0 ? std::optional(cli.config_file) : std::nullopt);
  if (!endpoints.is_ok()) {
    streams.err << "squallctl: " << endpoints.status().message() << "\n";
    return kExitUsage;
  }
  auto security = client_security(app, cli, https);
  if (!security.is_ok()) {
    streams.err << "squallctl: " << security.status().message() << "\n";
    return kExitUsage;
  }
  HttpClient client(std::move(endpoints.value()), cli.timeout_ms, std::move(security.value()));
  Context context{client, streams.in, streams.out, streams.err, cli.json};
  return dispatch(command.get_name(), context, cli);
}

}  // namespace squall::ctl
