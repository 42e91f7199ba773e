// LibfabricTransport: provider selection, queues, passive endpoint, memory registration.
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "fabric/libfabric_impl.hpp"

namespace squall::fabric {
namespace {

// Memory registration modes this code handles (docs/fabric.md, "Memory registration"). A
// provider that needs any other bit (FI_MR_ENDPOINT, FI_MR_RAW, FI_MR_MMU_NOTIFY, ...) is not
// offered by fi_getinfo, because it is absent from the hints.
constexpr std::uint64_t kSupportedMrModes =
    FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;

constexpr std::size_t kPageBytes = 4096;

char* duplicate(const std::string& text) {
  char* copy = strdup(text.c_str());
  SQUALL_ASSERT(copy != nullptr, "out of memory");
  return copy;
}

InfoPtr make_hints(const LibfabricOptions& options) {
  InfoPtr hints(fi_allocinfo());
  SQUALL_ASSERT(hints != nullptr, "fi_allocinfo failed");
  hints->ep_attr->type = FI_EP_MSG;
  hints->caps = FI_MSG | FI_RMA;
  // Receives consumed by remote CQ data are harmless here: immediates travel as messages.
  hints->mode = FI_RX_CQ_DATA;
  hints->domain_attr->mr_mode = static_cast<int>(kSupportedMrModes);
  hints->domain_attr->threading = FI_THREAD_DOMAIN;
  hints->domain_attr->resource_mgmt = FI_RM_ENABLED;
  hints->fabric_attr->prov_name = duplicate(options.provider);
  hints->domain_attr->name = duplicate(options.domain);
  // Sends after writes and writes after writes, in posting order: the basis of the
  // per-peer ordering promise and of emulated immediate data.
  // Providers (or devices) that cannot queue this deep are not offered.
  hints->tx_attr->size = options.tx_depth;
  hints->rx_attr->size = options.rx_depth;
  hints->tx_attr->msg_order = FI_ORDER_SAW | FI_ORDER_WAW | FI_ORDER_SAS;
  hints->rx_attr->msg_order = FI_ORDER_SAW | FI_ORDER_WAW | FI_ORDER_SAS;
  if (options.provider == "tcp") {
    // Manual progress: the provider touches memory only inside our fi_cq_read/fi_eq_read,
    // i.e. inside poll(), never from a thread of its own.
    hints->domain_attr->data_progress = FI_PROGRESS_MANUAL;
    hints->domain_attr->control_progress = FI_PROGRESS_MANUAL;
    hints->tx_attr->op_flags = FI_DELIVERY_COMPLETE;
  }
  return hints;
}

bool domain_matches(const fi_info* candidate, const std::string& domain) {
  return candidate->domain_attr != nullptr && candidate->domain_attr->name != nullptr &&
         domain == candidate->domain_attr->name;
}

// Prefers IPv4 among the entries of the wanted domain (tcp lists 127.0.0.1 and ::1 for lo).
const fi_info* pick(const fi_info* list, const std::string& domain) {
  const fi_info* chosen = nullptr;
  for (const fi_info* candidate = list; candidate != nullptr; candidate = candidate->next) {
    if (!domain_matches(candidate, domain)) continue;
    if (chosen == nullptr || (candidate->addr_format == FI_SOCKADDR_IN &&
                              chosen->addr_format != FI_SOCKADDR_IN)) {
      chosen = candidate;
    }
  }
  return chosen;
}

std::string domains_of(const fi_info* list) {
  std::string names;
  for (const fi_info* candidate = list; candidate != nullptr; candidate = candidate->next) {
    if (candidate->domain_attr == nullptr || candidate->domain_attr->name == nullptr) continue;
    if (!names.empty()) names += ", ";
    names += candidate->domain_attr->name;
  }
  return names.empty() ? "none" : names;
}

}  // namespace

std::string fi_error_text(std::string_view what, long code) {
  return fmt::format("{}: {} ({})", what, fi_strerror(static_cast<int>(-code)), code);
}

void RegisteredBuffer::Free::operator()(std::byte* memory) const { std::free(memory); }

LibfabricTransport::Impl::Impl(const LibfabricOptions& opts)
    : options(opts), log(logger("fabric")), nonce_source(std::random_device{}()) {}

LibfabricTransport::Impl::~Impl() {
  // Order matters: the bootstrap thread first (it owns nothing of libfabric), then endpoints
  // and their memory, then the queues they were bound to, then the domain and fabric.
  bootstrap.reset();
  for (auto& [id, peer] : peers) release_peer(*peer);
  peers.clear();
  regions.clear();
  pep.reset();
  cq.reset();
  eq.reset();
  domain.reset();
  fabric.reset();
}

Result<InfoPtr> LibfabricTransport::Impl::select_info() {
  InfoPtr hints = make_hints(options);
  fi_info* found = nullptr;
  int code = fi_getinfo(kFiVersion, nullptr, nullptr, 0, hints.get(), &found);
  InfoPtr list(found);
  if (code == -FI_ENODATA || list == nullptr) {
    return not_found(fmt::format(
        "libfabric offers no '{}' FI_EP_MSG endpoint with FI_MSG|FI_RMA, tx_depth {}, "
        "rx_depth {} and supported memory registration modes (see `fi_info -p {} -t "
        "FI_EP_MSG -v` for the limits)",
        options.provider, options.tx_depth, options.rx_depth, options.provider));
  }
  if (code != 0) return io_error(fi_error_text("fi_getinfo", code));
  const fi_info* chosen = pick(list.get(), options.domain);
  if (chosen == nullptr) {
    return not_found(fmt::format("provider '{}' has no domain '{}' here (it has: {})",
                                 options.provider, options.domain, domains_of(list.get())));
  }
  InfoPtr copy(fi_dupinfo(chosen));
  if (copy == nullptr) return io_error("fi_dupinfo failed");
  return copy;
}

Status LibfabricTransport::Impl::open() {
  auto selected = select_info();
  if (!selected) return selected.status();
  info = std::move(selected).value();
  auto mr_mode = static_cast<std::uint64_t>(info->domain_attr->mr_mode);
  virtual_addressing = (mr_mode & FI_MR_VIRT_ADDR) != 0;
  provider_keys = (mr_mode & FI_MR_PROV_KEY) != 0;
  local_mr = (mr_mode & FI_MR_LOCAL) != 0;
  if (info->domain_attr->mr_key_size > sizeof(std::uint64_t)) {
    return not_found(fmt::format("provider '{}' uses {}-byte memory keys; 8 is the maximum",
                                 options.provider, info->domain_attr->mr_key_size));
  }
  // tcp completes a write at the sender as soon as the bytes are in its socket unless asked
  // for delivery completion. A verbs RC write completes after the responder's ACK, i.e. once
  // the data is placed at the peer, so the default (transmit complete) already means that.
  write_flags = FI_COMPLETION | (options.provider == "tcp" ? FI_DELIVERY_COMPLETE : 0);
  max_rma_bytes = info->ep_attr->max_msg_size;
  if (options.max_message_bytes + wire::kFrameHeaderBytes > info->ep_attr->max_msg_size) {
    return invalid_argument(fmt::format("max_message_bytes {} exceeds the provider's {}",
                                        options.max_message_bytes,
                                        info->ep_attr->max_msg_size));
  }
  info->tx_attr->size = options.tx_depth;
  info->rx_attr->size = options.rx_depth;
  SQUALL_TRY(open_queues());
  SQUALL_TRY(open_listener());
  log->info("fabric: node {} provider {} domain {} fabric {}; mr_mode local={} virt_addr={} "
            "prov_key={}; endpoint {} bytes",
            options.node_id, options.provider, options.domain, info->fabric_attr->name,
            local_mr, virtual_addressing, provider_keys, endpoint_name.size());
  return Status::ok();
}

Status LibfabricTransport::Impl::open_queues() {
  fid_fabric* fabric_raw = nullptr;
  int code = fi_fabric(info->fabric_attr, &fabric_raw, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_fabric", code));
  fabric.reset(fabric_raw);
  fid_domain* domain_raw = nullptr;
  code = fi_domain(fabric.get(), info.get(), &domain_raw, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_domain", code));
  domain.reset(domain_raw);

  fi_eq_attr eq_attr{};
  eq_attr.size = 4 * static_cast<std::size_t>(options.max_peers) + 16;
  eq_attr.wait_obj = FI_WAIT_UNSPEC;
  fid_eq* eq_raw = nullptr;
  code = fi_eq_open(fabric.get(), &eq_attr, &eq_raw, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_eq_open", code));
  eq.reset(eq_raw);

  // Every operation that can complete is bounded per peer by tx_depth + rx_depth.
  fi_cq_attr cq_attr{};
  cq_attr.size = static_cast<std::size_t>(options.max_peers) *
                 (options.tx_depth + options.rx_depth);
  cq_attr.format = FI_CQ_FORMAT_DATA;
  cq_attr.wait_obj = FI_WAIT_NONE;
  fid_cq* cq_raw = nullptr;
  code = fi_cq_open(domain.get(), &cq_attr, &cq_raw, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_cq_open", code));
  cq.reset(cq_raw);
  return Status::ok();
}

Status LibfabricTransport::Impl::open_listener() {
  fid_pep* pep_raw = nullptr;
  int code = fi_passive_ep(fabric.get(), info.get(), &pep_raw, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_passive_ep", code));
  pep.reset(pep_raw);
  code = fi_pep_bind(pep.get(), &eq->fid, 0);
  if (code != 0) return io_error(fi_error_text("fi_pep_bind", code));
  code = fi_listen(pep.get());
  if (code != 0) return io_error(fi_error_text("fi_listen", code));

  std::size_t cm_data_bytes = 0;
  std::size_t option_bytes = sizeof(cm_data_bytes);
  code = fi_getopt(&pep->fid, FI_OPT_ENDPOINT, FI_OPT_CM_DATA_SIZE, &cm_data_bytes,
                   &option_bytes);
  if (code == 0 && cm_data_bytes < wire::kConnreqBytes) {
    return not_found(fmt::format("provider carries {} bytes of connection data; {} needed",
                                 cm_data_bytes, wire::kConnreqBytes));
  }
  std::array<std::byte, kEndpointNameMaxBytes> name{};
  std::size_t name_bytes = name.size();
  code = fi_getname(&pep->fid, name.data(), &name_bytes);
  if (code != 0) return io_error(fi_error_text("fi_getname", code));
  if (name_bytes == 0 || name_bytes > name.size()) {
    return io_error(fmt::format("endpoint name of {} bytes", name_bytes));
  }
  endpoint_name.assign(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(name_bytes));
  return Status::ok();
}

Status LibfabricTransport::Impl::register_buffer(RegisteredBuffer& buffer,
                                                 std::size_t size_bytes, std::uint64_t access) {
  std::size_t rounded = (size_bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
  void* memory = std::aligned_alloc(kPageBytes, rounded);
  if (memory == nullptr) return Status(Code::no_space, "cannot allocate fabric buffers");
  std::memset(memory, 0, rounded);
  buffer.memory.reset(static_cast<std::byte*>(memory));
  buffer.size_bytes = rounded;
  fid_mr* mr = nullptr;
  int code = fi_mr_reg(domain.get(), memory, rounded, access, 0, provider_keys ? 0 : next_key++,
                       0, &mr, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_mr_reg", code));
  buffer.mr.reset(mr);
  buffer.desc = fi_mr_desc(mr);
  buffer.key = fi_mr_key(mr);
  return Status::ok();
}

Status LibfabricTransport::Impl::register_region(RegionId id, std::span<std::byte> memory) {
  if (regions_frozen) {
    return Status(Code::precondition_failed, "regions must be registered before add_peer()");
  }
  if (memory.empty()) return invalid_argument(fmt::format("region {} is empty", id));
  if (regions.contains(id)) {
    return Status(Code::already_exists, fmt::format("region {} is registered already", id));
  }
  if (regions.size() >= options.max_regions) {
    return Status(Code::no_space, fmt::format("at most {} regions", options.max_regions));
  }
  fid_mr* mr = nullptr;
  int code = fi_mr_reg(domain.get(), memory.data(), memory.size(), FI_WRITE | FI_REMOTE_WRITE,
                       0, provider_keys ? 0 : next_key++, 0, &mr, nullptr);
  if (code != 0) return io_error(fi_error_text(fmt::format("fi_mr_reg region {}", id), code));
  LocalRegion& region = regions[id];
  region.memory = memory;
  region.mr.reset(mr);
  region.desc = fi_mr_desc(mr);
  region.key = fi_mr_key(mr);
  return Status::ok();
}

// The address a writer adds offsets to: our virtual address under FI_MR_VIRT_ADDR, else 0.
Hello LibfabricTransport::Impl::hello_for(const Peer& peer) const {
  auto base = [this](const void* memory) {
    return virtual_addressing ? reinterpret_cast<std::uint64_t>(memory) : 0;
  };
  Hello hello;
  hello.from = options.node_id;
  hello.to = peer.id;
  hello.channel = options.channel;
  hello.nonce = peer.local_nonce;
  hello.rx_depth = options.rx_depth;
  hello.max_message_bytes = options.max_message_bytes;
  hello.provider = options.provider;
  hello.endpoint_name = endpoint_name;
  hello.control = {0, kControlBytes, peer.control.key, base(peer.control.at(0))};
  for (const auto& [id, region] : regions) {
    hello.regions.push_back({id, region.memory.size(), region.key, base(region.memory.data())});
  }
  return hello;
}

}  // namespace squall::fabric
