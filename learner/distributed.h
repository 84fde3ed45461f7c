// Data parallel over torch's c10d: a TCPStore rendezvous from torchrun's
// environment variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), Gloo on
// CPU, NCCL on CUDA (where torch was built with it), and the few collectives
// the learner needs; CPU tensors given to an NCCL group travel through the GPU.
// Gloo listens where choose_gloo_endpoints says, so ranks on other hosts can
// reach it. With WORLD_SIZE unset or 1 every call is a local no-op. One object
// per process, used from the training thread only.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace r1kit {

// One address the Gloo backend listens on: a network interface, or else a
// host name or numeric address to bind.
struct GlooEndpoint {
  std::string interface;  // from GLOO_SOCKET_IFNAME; empty otherwise
  std::string address;    // numeric, when `interface` is empty
  std::string reason;     // why it was chosen, for the log
};

// Where this rank's Gloo backend listens, as torch.distributed chooses it plus
// one step for hosts whose name resolves to loopback (the Debian default):
//   1. every interface GLOO_SOCKET_IFNAME lists (comma-separated);
//   2. loopback when `master_address` is loopback (every rank is on this host);
//   3. the first bindable, non-loopback address this host's name resolves to;
//   4. the local address the kernel routes to `master_address`:`master_port`;
//   5. loopback, with a warning that ranks on other hosts cannot reach it.
// Throws a one-line usage error naming GLOO_SOCKET_IFNAME and the interface
// when a listed interface does not exist here or has no address.
std::vector<GlooEndpoint> choose_gloo_endpoints(const std::string& master_address, int master_port);

class Distributed {
 public:
  // Reads the torchrun variables; rank 0 hosts the store. `device` is where
  // the model trains: Gloo for the CPU (listening on choose_gloo_endpoints),
  // NCCL for CUDA. Throws a usage error naming the variable when one is
  // malformed (GLOO_SOCKET_IFNAME included) or naming the backend when this
  // build lacks it, an I/O error when the rendezvous fails within `timeout_seconds`.
  static std::unique_ptr<Distributed> from_environment(at::Device device = at::kCPU,
                                                       double timeout_seconds = 300);
  // A single-process group (tests, plain runs).
  static std::unique_ptr<Distributed> single();
  ~Distributed();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_main() const { return rank_ == 0; }
  // "gloo", "nccl", or "none" for a single process.
  const std::string& backend_name() const { return backend_name_; }

  // Sums the tensors over ranks in place, flattening them into buckets of
  // about `bucket_bytes` so a model's gradients take a few collectives.
  void all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 32 << 20);
  // Sums one small tensor (counts, metrics) in place.
  void all_reduce_sum(at::Tensor& tensor);
  // Concatenates every rank's `tensor` (same shape on each) along dim 0, in rank order.
  at::Tensor all_gather(const at::Tensor& tensor);
  void broadcast(at::Tensor& tensor, int root = 0);
  void barrier();
  // Every rank's `bytes` (any length each), in rank order.
  std::vector<std::string> all_gather_bytes(const std::string& bytes);

  // Another group of the same ranks on the same store and backend, whose
  // collectives are independent of this one's: another thread of every rank
  // (the asynchronous rollouts' producer) may use it at the same time. Every
  // rank calls it, in the same order, with the same `name`.
  std::unique_ptr<Distributed> new_group(const std::string& name);

  struct Connection;  // the c10d store and backend, kept out of this header

 private:
  Distributed(int rank, int world_size);

  int rank_;
  int world_size_;
  std::string backend_name_ = "none";
  std::unique_ptr<Connection> connection_;
};

}  // namespace r1kit
