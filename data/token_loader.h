// Streaming batches for causal-LM pretraining from prepared token shards:
// fixed windows of seq_len + 1 tokens (inputs and shifted targets), shuffled
// per epoch from a seed, split disjointly across ranks, prepared one or more
// batches ahead on a background thread, with an exact position {epoch, cursor}
// that a checkpoint saves so a resumed run reads the same next batches.
// One owner thread calls next()/state()/restore(); the prefetch thread is internal.
//
//   TokenLoader loader(ShardSet::open("data/shards"), {.seq_len = 256, .batch_size = 8});
//   at::Tensor window = loader.next();            // (B, seq_len + 1) int64
//   nlohmann::json saved = loader.state().to_json();
#pragma once

#include <ATen/ATen.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "data/token_shards.h"

namespace r1kit {

struct TokenLoaderOptions {
  int64_t seq_len = 256;       // tokens the model sees per row; windows hold seq_len + 1
  int64_t batch_size = 8;      // windows per rank per batch
  uint64_t seed = 0;           // fixes every epoch's order
  int64_t rank = 0;            // this process's rank, 0..world_size-1
  int64_t world_size = 1;      // ranks reading the same shards
  bool shuffle = true;         // false = windows in corpus order every epoch
  std::string split = "all";   // all, train or eval: windows held out by eval_fraction
  double eval_fraction = 0.0;  // share of windows in the eval split (a fixed hash of the window)
  int64_t prefetch = 2;        // batches prepared ahead on a background thread; 0 = none
};

// Where the next batch starts: the epoch and how many windows of the epoch's
// order the ranks have consumed together (a multiple of batch_size * world_size,
// so a state also resumes with another world size of the same global batch).
struct LoaderState {
  int64_t epoch = 0;
  int64_t cursor = 0;

  bool operator==(const LoaderState& other) const = default;
  nlohmann::json to_json() const { return {{"epoch", epoch}, {"cursor", cursor}}; }
  static LoaderState from_json(const nlohmann::json& json);
};

class TokenLoader {
 public:
  // Windows tile each shard with stride seq_len (a window's last token is the
  // next one's first); the remainder of a shard shorter than a window is
  // unused. Throws Error(kConfig) when the split has fewer windows than one
  // global batch (batch_size * world_size).
  TokenLoader(std::shared_ptr<const ShardSet> shards, TokenLoaderOptions options);
  ~TokenLoader();
  TokenLoader(const TokenLoader&) = delete;
  TokenLoader& operator=(const TokenLoader&) = delete;

  // The next batch of this rank: tokens (B, seq_len + 1) int64 on the CPU.
  // Epochs roll over on their own; the tail smaller than a global batch is
  // skipped so every rank takes the same number of steps.
  at::Tensor next();
  // The position of the batch next() returns next (prefetched ones not counted).
  LoaderState state() const { return state_; }
  // Continues from `state` (from state() of a loader with the same shards and
  // options); discards prefetched batches.
  void restore(const LoaderState& state);

  int64_t num_windows() const { return static_cast<int64_t>(windows_.size()); }
  int64_t batches_per_epoch() const;
  const TokenLoaderOptions& options() const { return options_; }

  // Windows a loader with `options` would have (to size a small eval split).
  static int64_t count_windows(const ShardSet& shards, const TokenLoaderOptions& options);

 private:
  struct Window {
    uint32_t shard;
    int64_t start;
  };
  struct Prefetched {
    at::Tensor batch;
    LoaderState next;
  };

  // The batch at `state` and the state after it; used by one thread at a time.
  Prefetched make_batch(const LoaderState& state);
  const std::vector<uint64_t>& order_of(int64_t epoch);
  void start_prefetch();
  void stop_prefetch();
  void prefetch_loop();

  std::shared_ptr<const ShardSet> shards_;
  TokenLoaderOptions options_;
  std::vector<Window> windows_;
  std::vector<uint64_t> order_;  // window indices of epoch order_epoch_
  int64_t order_epoch_ = -1;
  LoaderState state_;

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Prefetched> ready_;
  LoaderState produce_at_;
  std::exception_ptr error_;
  bool stopping_ = false;
};

}  // namespace r1kit
