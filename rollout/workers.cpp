#include "rollout/workers.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "common/error.h"

namespace r1kit {
namespace {

bool weights_on_cpu(PolicyWeights& weights) {
  return weights.model->parameters().front().device().is_cpu();
}

size_t resolve_worker_count(size_t requested, PolicyWeights& weights) {
  if (requested > 0) return requested;
  if (!weights_on_cpu(weights)) return 1;
  return std::clamp<size_t>(static_cast<size_t>(at::get_num_threads()), 1,
                            RolloutWorkers::kMaxAutoWorkers);
}

}  // namespace

RolloutWorkers::RolloutWorkers(std::shared_ptr<PolicyWeights> weights,
                               std::shared_ptr<const Tokenizer> tokenizer, size_t num_workers,
                               EngineOptions options)
    : weights_(std::move(weights)),
      tokenizer_(std::move(tokenizer)),
      pool_(resolve_worker_count(num_workers, *weights_)) {
  num_workers = pool_.size();
  // CPU engines share the cores rather than each starting a team of every
  // core, which oversubscribes them; generate() decides each call's share.
  share_cores_ = options.num_threads == 0 && weights_on_cpu(*weights_);
  cpu_threads_ = at::get_num_threads();
  for (size_t i = 0; i < num_workers; ++i) {
    engines_.push_back(std::make_unique<RolloutEngine>(weights_, tokenizer_.get(), options));
    idle_.push_back(engines_.back().get());
  }
}

RolloutWorkers::~RolloutWorkers() { pool_.join(); }

RolloutEngine* RolloutWorkers::acquire() {
  std::unique_lock lock(mutex_);
  engine_freed_.wait(lock, [this] { return !idle_.empty(); });
  RolloutEngine* engine = idle_.back();
  idle_.pop_back();
  return engine;
}

void RolloutWorkers::release(RolloutEngine* engine) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(engine);
  }
  engine_freed_.notify_one();
}

std::vector<Completion> RolloutWorkers::run(const std::vector<std::vector<int64_t>>& prompts,
                                            const SamplingParams& params,
                                            int64_t first_prompt_index, int64_t engines_at_once) {
  RolloutEngine* engine = acquire();
  // 0 = the calling thread's own count: a lone engine runs on the caller's thread.
  if (share_cores_)
    engine->set_num_threads(
        engines_at_once > 1 ? std::max<int64_t>(1, cpu_threads_ / engines_at_once) : 0);
  try {
    auto completions = engine->generate(prompts, params, {}, first_prompt_index);
    release(engine);
    return completions;
  } catch (...) {
    release(engine);
    throw;
  }
}

std::future<std::vector<Completion>> RolloutWorkers::submit(
    std::vector<std::vector<int64_t>> prompts, SamplingParams params) {
  const auto engines = static_cast<int64_t>(engines_.size());
  return pool_.submit([this, prompts = std::move(prompts), params, engines] {
    return run(prompts, params, 0,
               std::max<int64_t>(engines, 2));  // beside other requests: one share
  });
}

std::vector<Completion> RolloutWorkers::generate(const std::vector<std::vector<int64_t>>& prompts,
                                                 const SamplingParams& params,
                                                 int64_t first_prompt_index) {
  size_t parts = std::min(engines_.size(), std::max<size_t>(prompts.size(), 1));
  if (share_cores_) {
    // Small requests stay on one engine with every core: an engine needs a
    // batch of rows to use its core well.
    const size_t sequences = prompts.size() * static_cast<size_t>(std::max<int64_t>(params.n, 1));
    parts = std::clamp<size_t>(sequences / kMinSequencesPerEngine, 1, parts);
  }
  if (parts == 1) return run(prompts, params, first_prompt_index, 1);
  std::vector<std::future<std::vector<Completion>>> futures;
  size_t begin = 0;
  for (size_t part = 0; part < parts; ++part) {
    size_t end = begin + (prompts.size() - begin) / (parts - part);
    std::vector<std::vector<int64_t>> slice(prompts.begin() + begin, prompts.begin() + end);
    int64_t first = first_prompt_index + static_cast<int64_t>(begin);
    futures.push_back(pool_.submit([this, slice = std::move(slice), params, first, parts] {
      return run(slice, params, first, static_cast<int64_t>(parts));
    }));
    begin = end;
  }
  std::vector<Completion> all;
  for (auto& future : futures) {
    auto part = future.get();
    all.insert(all.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  return all;
}

}  // namespace r1kit
