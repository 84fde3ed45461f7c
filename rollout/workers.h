// Rollout workers: several engines sharing one PolicyWeights, each with its own
// KV cache, serving generation requests on the Asio thread pool. A request's
// prompts are split into whole groups across the workers; the results come
// back in prompt order and equal a single engine's (per-sequence seeds use the
// global prompt index). Thread-safe: any thread may submit; the learner
// publishes new weights through PolicyWeights::publish, which waits for the
// samplers in flight and holds new ones back until the update is complete.
#pragma once

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "common/thread_pool.h"
#include "rollout/engine.h"

namespace r1kit {

class RolloutWorkers {
 public:
  // `num_workers` engines (threads on CPU; one per GPU later); 0 = automatic:
  // on CPU one engine per core (at most kMaxAutoWorkers), each running its ops
  // on one thread, on GPU one. A decode step is a chain of ~100 small ops:
  // one engine spreading each op over every core leaves the cores waiting on
  // each other at every op, while an engine per core keeps them all busy
  // (measured on 2 cores: batch-64 bf16 decode of the ~20M bench model went
  // from ~9.4k to 12-13k tokens/s, the 0.8M GRPO bench's generation from
  // 0.086 to ~0.03 s).
  // With options.num_threads = 0, each call splits the cores among the
  // engines it uses; a request of fewer than 2 x kMinSequencesPerEngine
  // sequences runs on one engine, on the calling thread, with every core.
  RolloutWorkers(std::shared_ptr<PolicyWeights> weights, std::shared_ptr<const Tokenizer> tokenizer,
                 size_t num_workers = 0, EngineOptions options = {});
  static constexpr size_t kMaxAutoWorkers = 8;
  // On shared cores, a request is split only into parts of at least this many
  // sequences; a smaller one runs on one engine with every core.
  static constexpr size_t kMinSequencesPerEngine = 16;
  ~RolloutWorkers();

  // Queues one request; the future holds params.n completions per prompt.
  std::future<std::vector<Completion>> submit(std::vector<std::vector<int64_t>> prompts,
                                              SamplingParams params);

  // Splits `prompts` across the workers and waits for all of them. Prompts
  // are numbered from `first_prompt_index` (see RolloutEngine::generate).
  std::vector<Completion> generate(const std::vector<std::vector<int64_t>>& prompts,
                                   const SamplingParams& params, int64_t first_prompt_index = 0);

  size_t size() const { return engines_.size(); }
  const std::shared_ptr<PolicyWeights>& weights() const { return weights_; }

 private:
  // Blocks until an engine is free and hands it out; release returns it.
  RolloutEngine* acquire();
  void release(RolloutEngine* engine);
  // Generates on a free engine; with share_cores_, on a 1 / engines_at_once
  // share of the cores (1: the calling thread's own count).
  std::vector<Completion> run(const std::vector<std::vector<int64_t>>& prompts,
                              const SamplingParams& params, int64_t first_prompt_index,
                              int64_t engines_at_once);

  std::shared_ptr<PolicyWeights> weights_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::vector<std::unique_ptr<RolloutEngine>> engines_;
  std::vector<RolloutEngine*> idle_;
  std::mutex mutex_;
  std::condition_variable engine_freed_;
  bool share_cores_ = false;  // CPU engines whose thread counts generate() sets
  int64_t cpu_threads_ = 1;   // ATen threads of the constructing thread
  ThreadPool pool_;
};

}  // namespace r1kit
