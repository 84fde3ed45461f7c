#include "learner/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// NCCL where the torch build has it (its CMake config defines USE_C10D_NCCL).
#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define R1KIT_HAS_NCCL 1
#endif

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

#include "common/error.h"
#include "common/logging.h"

namespace r1kit {
namespace {

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  char* end = nullptr;
  long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < 0) {
    throw_usage_error(std::string("environment variable ") + name + "=\"" + value +
                      "\" is not a non-negative integer");
  }
  return static_cast<int>(parsed);
}

// `text` with its line breaks turned into spaces: errors stay one line.
std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

bool is_loopback(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    auto ip = ntohl(reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr);
    return (ip >> 24) == 127;
  }
  if (address->sa_family == AF_INET6) {
    const auto& ip6 = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&ip6) || (IN6_IS_ADDR_V4MAPPED(&ip6) && ip6.s6_addr[12] == 127);
  }
  return false;
}

std::string numeric_address(const sockaddr* address, socklen_t length) {
  char text[NI_MAXHOST] = {0};
  if (getnameinfo(address, length, text, sizeof(text), nullptr, 0, NI_NUMERICHOST) != 0) return "";
  return text;
}

// The TCP addresses `host` resolves to (empty when it does not resolve).
std::vector<sockaddr_storage> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::vector<sockaddr_storage> addresses;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return addresses;
  for (addrinfo* entry = found; entry; entry = entry->ai_next) {
    sockaddr_storage address{};
    std::memcpy(&address, entry->ai_addr, entry->ai_addrlen);
    addresses.push_back(address);
  }
  freeaddrinfo(found);
  return addresses;
}

socklen_t length_of(const sockaddr_storage& address) {
  return address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// Whether a socket can bind `address` (port 0): the address is local here.
bool bindable(const sockaddr_storage& address) {
  int fd = socket(address.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return false;
  bool bound = bind(fd, reinterpret_cast<const sockaddr*>(&address), length_of(address)) == 0;
  close(fd);
  return bound;
}

// The local address the kernel would send from to reach `address`:`port`
// (a UDP connect sends nothing), or "" when there is no route.
std::string source_address_towards(sockaddr_storage address, int port) {
  if (address.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(static_cast<uint16_t>(port));
  else
    reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(static_cast<uint16_t>(port));
  int fd = socket(address.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) return "";
  std::string source;
  sockaddr_storage local{};
  socklen_t local_length = sizeof(local);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), length_of(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) == 0 &&
      !is_loopback(reinterpret_cast<const sockaddr*>(&local)))
    source = numeric_address(reinterpret_cast<const sockaddr*>(&local), local_length);
  close(fd);
  return source;
}

// Interface name -> whether it has an IPv4 or IPv6 address.
std::map<std::string, bool> network_interfaces() {
  std::map<std::string, bool> interfaces;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return interfaces;
  for (ifaddrs* entry = list; entry; entry = entry->ifa_next) {
    bool has_address = entry->ifa_addr && (entry->ifa_addr->sa_family == AF_INET ||
                                           entry->ifa_addr->sa_family == AF_INET6);
    interfaces[entry->ifa_name] = interfaces[entry->ifa_name] || has_address;
  }
  freeifaddrs(list);
  return interfaces;
}

std::vector<GlooEndpoint> endpoints_from_interface_list(const std::string& list) {
  auto interfaces = network_interfaces();
  std::string known;
  for (const auto& [name, has_address] : interfaces) known += (known.empty() ? "" : ", ") + name;
  std::vector<GlooEndpoint> endpoints;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t end = std::min(list.find(',', begin), list.size());
    std::string name = list.substr(begin, end - begin);
    std::string prefix = "GLOO_SOCKET_IFNAME=\"" + list + "\": ";
    if (name.empty()) throw_usage_error(prefix + "an empty interface name in the list");
    auto found = interfaces.find(name);
    if (found == interfaces.end()) {
      throw_usage_error(prefix + "this host has no network interface \"" + name +
                        "\" (it has: " + known + ")");
    }
    if (!found->second)
      throw_usage_error(prefix + "the network interface \"" + name + "\" has no IP address");
    endpoints.push_back({name, "", "listed in GLOO_SOCKET_IFNAME"});
    begin = end + 1;
  }
  return endpoints;
}

}  // namespace

std::vector<GlooEndpoint> choose_gloo_endpoints(const std::string& master_address,
                                                int master_port) {
  const char* listed = std::getenv("GLOO_SOCKET_IFNAME");
  if (listed && *listed) return endpoints_from_interface_list(listed);

  auto master = resolve(master_address);
  bool master_is_loopback =
      !master.empty() && std::all_of(master.begin(), master.end(), [](const auto& address) {
        return is_loopback(reinterpret_cast<const sockaddr*>(&address));
      });
  if (master_is_loopback)
    return {{"", "127.0.0.1",
             "MASTER_ADDR " + master_address + " is loopback, so every rank is on this host"}};

  char host_name[HOST_NAME_MAX + 1] = {0};
  std::string host = gethostname(host_name, sizeof(host_name) - 1) == 0 ? host_name : "";
  std::string host_resolves_to = "does not resolve";
  for (const auto& address : resolve(host)) {
    auto* plain = reinterpret_cast<const sockaddr*>(&address);
    if (is_loopback(plain)) {
      host_resolves_to = "resolves to loopback";
      continue;
    }
    if (!bindable(address)) {
      host_resolves_to = "resolves to " + numeric_address(plain, length_of(address)) +
                         ", not an address of this host";
      continue;
    }
    return {
        {"", numeric_address(plain, length_of(address)), "the address of the host name " + host}};
  }
  for (const auto& address : master) {
    std::string source = source_address_towards(address, master_port);
    if (!source.empty()) {
      return {{"", source,
               "the address this host reaches MASTER_ADDR " + master_address +
                   " from (the host name " + host + " " + host_resolves_to + ")"}};
    }
  }
  log_warning() << "the host name " << host << " " << host_resolves_to
                << " and there is no route to MASTER_ADDR " << master_address
                << ": Gloo listens on loopback, which ranks on other hosts cannot reach; "
                   "set GLOO_SOCKET_IFNAME to the interface they can";
  return {{"", "127.0.0.1", "no other address was found"}};
}

struct Distributed::Connection {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  at::Device device = at::kCPU;  // where the backend's tensors must live (NCCL: the GPU)
  // What new_group() needs to open another group like this one.
  std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices;
  std::chrono::milliseconds timeout{0};
};

namespace {

// A Gloo process group over the connection's store, devices and timeout.
c10::intrusive_ptr<c10d::Backend> gloo_backend(const Distributed::Connection& connection, int rank,
                                               int world_size) {
  auto options = c10d::ProcessGroupGloo::Options::create(connection.timeout);
  options->devices = connection.gloo_devices;
  options->threads = 2 * static_cast<int>(connection.gloo_devices.size());  // as torch sets it
  return c10::make_intrusive<c10d::ProcessGroupGloo>(connection.store, rank, world_size, options);
}

// Runs `collective` on `tensor`, or on a copy on `device` copied back after.
void on_device(at::Tensor& tensor, at::Device device,
               const std::function<void(at::Tensor&)>& collective) {
  if (tensor.device() == device) {
    collective(tensor);
    return;
  }
  at::Tensor moved = tensor.to(device);
  collective(moved);
  tensor.copy_(moved);
}

}  // namespace

Distributed::Distributed(int rank, int world_size)
    : rank_(rank), world_size_(world_size), connection_(std::make_unique<Connection>()) {}

std::unique_ptr<Distributed> Distributed::single() {
  return std::unique_ptr<Distributed>(new Distributed(0, 1));
}

std::unique_ptr<Distributed> Distributed::from_environment(at::Device device,
                                                           double timeout_seconds) {
  int world_size = env_int("WORLD_SIZE", 1);
  int rank = env_int("RANK", 0);
  if (world_size <= 1) return single();
  if (rank >= world_size) {
    throw_usage_error("RANK=" + std::to_string(rank) +
                      " is not below WORLD_SIZE=" + std::to_string(world_size));
  }
  const char* address = std::getenv("MASTER_ADDR");
  std::string host = address && *address ? address : "127.0.0.1";
  int port = env_int("MASTER_PORT", 29500);
  auto distributed = std::unique_ptr<Distributed>(new Distributed(rank, world_size));
  set_log_rank(rank);
  // Chosen before the rendezvous, so a mistaken GLOO_SOCKET_IFNAME stops at once.
  std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices;
  if (!device.is_cuda()) {
    for (const GlooEndpoint& endpoint : choose_gloo_endpoints(host, port)) {
      const std::string& where = endpoint.interface.empty() ? endpoint.address : endpoint.interface;
      try {
        gloo_devices.push_back(
            endpoint.interface.empty()
                ? c10d::ProcessGroupGloo::createDeviceForHostname(endpoint.address)
                : c10d::ProcessGroupGloo::createDeviceForInterface(endpoint.interface));
      } catch (const std::exception& e) {
        std::string what = one_line(e.what());
        if (auto* torch_error = dynamic_cast<const c10::Error*>(&e))
          what = one_line(torch_error->what_without_backtrace());
        throw_io_error("rank " + std::to_string(rank) + ": Gloo cannot listen on " + where + ", " +
                       endpoint.reason + ": " + what);
      }
      log_info() << "Gloo listens on " << where << ", " << endpoint.reason;
    }
  }
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = rank == 0;
    options.numWorkers = world_size;
    options.timeout = timeout;
    Connection& connection = *distributed->connection_;
    connection.store = c10::make_intrusive<c10d::TCPStore>(host, options);
    connection.timeout = timeout;
    if (device.is_cuda()) {
#ifdef R1KIT_HAS_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      connection.backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(connection.store, rank,
                                                                       world_size, nccl_options);
      connection.device = device;
      distributed->backend_name_ = "nccl";
#else
      throw_usage_error("rank " + std::to_string(rank) + ": the model trains on " + device.str() +
                        " but this build of torch has no NCCL backend (c10d::ProcessGroupNCCL); "
                        "use a CUDA build of torch, or model.device \"cpu\" for Gloo");
#endif
    } else {
      connection.gloo_devices = gloo_devices;
      connection.backend = gloo_backend(connection, rank, world_size);
      distributed->backend_name_ = "gloo";
    }
  } catch (const c10::Error& e) {
    throw_io_error("rank " + std::to_string(rank) + ": rendezvous at " + host + ":" +
                   std::to_string(port) + " failed: " + one_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw_io_error("rank " + std::to_string(rank) + ": rendezvous at " + host + ":" +
                   std::to_string(port) + " failed: " + one_line(e.what()));
  }
  log_info() << "joined a group of " << world_size << " ranks (" << distributed->backend_name_
             << ") at " << host << ":" << port;
  return distributed;
}

std::unique_ptr<Distributed> Distributed::new_group(const std::string& name) {
  auto group = std::unique_ptr<Distributed>(new Distributed(rank_, world_size_));
  group->backend_name_ = backend_name_;
  if (world_size_ == 1) return group;
  Connection& connection = *group->connection_;
  connection.store = c10::make_intrusive<c10d::PrefixStore>(name, connection_->store);
  connection.device = connection_->device;
  connection.gloo_devices = connection_->gloo_devices;
  connection.timeout = connection_->timeout;
  try {
    if (backend_name_ == "gloo") {
      connection.backend = gloo_backend(connection, rank_, world_size_);
    } else {
#ifdef R1KIT_HAS_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = connection.timeout;
      connection.backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(connection.store, rank_,
                                                                       world_size_, nccl_options);
#else
      TORCH_CHECK(false, "new_group: no backend \"", backend_name_, "\" in this build");
#endif
    }
  } catch (const c10::Error& e) {
    throw_io_error("rank " + std::to_string(rank_) + ": opening the process group \"" + name +
                   "\" failed: " + one_line(e.what_without_backtrace()));
  }
  return group;
}

Distributed::~Distributed() = default;

std::vector<std::string> Distributed::all_gather_bytes(const std::string& bytes) {
  if (world_size_ == 1) return {bytes};
  at::Tensor length = at::tensor({static_cast<int64_t>(bytes.size())}, at::kLong);
  const at::Tensor lengths = all_gather(length);
  const int64_t longest = lengths.max().item<int64_t>();
  at::Tensor padded = at::zeros({longest}, at::kByte);
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(padded.data_ptr<uint8_t>()));
  const at::Tensor all = all_gather(padded).contiguous();
  std::vector<std::string> gathered;
  const char* data = reinterpret_cast<const char*>(all.data_ptr<uint8_t>());
  for (int r = 0; r < world_size_; ++r)
    gathered.emplace_back(data + r * longest, static_cast<size_t>(lengths[r].item<int64_t>()));
  return gathered;
}

void Distributed::all_reduce_sum(at::Tensor& tensor) {
  if (world_size_ == 1) return;
  on_device(tensor, connection_->device, [&](at::Tensor& local) {
    std::vector<at::Tensor> tensors = {local};
    connection_->backend->allreduce(tensors)->wait();
  });
}

void Distributed::all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  if (world_size_ == 1 || tensors.empty()) return;
  size_t begin = 0;
  while (begin < tensors.size()) {
    size_t end = begin;
    int64_t bytes = 0;
    while (end < tensors.size() &&
           (end == begin || bytes + tensors[end].nbytes() <= static_cast<size_t>(bucket_bytes))) {
      bytes += tensors[end].nbytes();
      ++end;
    }
    std::vector<at::Tensor> flat_parts;
    for (size_t i = begin; i < end; ++i) flat_parts.push_back(tensors[i].reshape({-1}));
    at::Tensor bucket = at::cat(flat_parts);
    all_reduce_sum(bucket);
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      int64_t count = tensors[i].numel();
      tensors[i].copy_(bucket.narrow(0, offset, count).view_as(tensors[i]));
      offset += count;
    }
    begin = end;
  }
}

at::Tensor Distributed::all_gather(const at::Tensor& tensor) {
  if (world_size_ == 1) return tensor.clone();
  const at::Device device = connection_->device;
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < world_size_; ++r)
    outputs[0].push_back(at::empty_like(tensor, tensor.options().device(device)));
  std::vector<at::Tensor> inputs = {tensor.to(device).contiguous()};
  connection_->backend->allgather(outputs, inputs)->wait();
  return at::cat(outputs[0], 0).to(tensor.device());
}

void Distributed::broadcast(at::Tensor& tensor, int root) {
  if (world_size_ == 1) return;
  on_device(tensor, connection_->device, [&](at::Tensor& local) {
    std::vector<at::Tensor> tensors = {local};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    connection_->backend->broadcast(tensors, options)->wait();
  });
}

void Distributed::barrier() {
  if (world_size_ == 1) return;
  at::Tensor token = at::zeros({1});
  all_reduce_sum(token);
}

}  // namespace r1kit
