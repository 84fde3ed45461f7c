#include "learner/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// NCCL where the torch build has it (its CMake config defines USE_C10D_NCCL).
#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define R1KIT_HAS_NCCL 1
#endif

#include <chrono>
#include <cstdlib>
#include <functional>

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

}  // namespace

struct Distributed::Connection {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  at::Device device = at::kCPU;  // where the backend's tensors must live (NCCL: the GPU)
};

namespace {

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
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = rank == 0;
    options.numWorkers = world_size;
    options.timeout = timeout;
    Connection& connection = *distributed->connection_;
    connection.store = c10::make_intrusive<c10d::TCPStore>(host, options);
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
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
      connection.backend = c10::make_intrusive<c10d::ProcessGroupGloo>(connection.store, rank,
                                                                       world_size, gloo_options);
      distributed->backend_name_ = "gloo";
    }
  } catch (const c10::Error& e) {
    throw_io_error("rank " + std::to_string(rank) + ": rendezvous at " + host + ":" +
                   std::to_string(port) + " failed: " + e.what_without_backtrace());
  }
  set_log_rank(rank);
  log_info() << "joined a group of " << world_size << " ranks (" << distributed->backend_name_
             << ") at " << host << ":" << port;
  return distributed;
}

Distributed::~Distributed() = default;

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
