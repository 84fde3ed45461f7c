#include "rollout/workers.h"

#include <ATen/Parallel.h>

#include "common/error.h"

namespace r1kit {
namespace {

bool weights_on_cpu(PolicyWeights& weights) {
  return weights.model->parameters().front().device().is_cpu();
}

size_t resolve_worker_count(size_t requested, PolicyWeights& weights) {
  if (requested > 0) return requested;
  if (!weights_on_cpu(weights)) return 1;
  return std::clamp<size_t>(static_cast<size_t>(at::get_num_threads()), 1, RolloutWorkers::kMaxAutoWorkers);
}

}  // namespace

RolloutWorkers::RolloutWorkers(std::shared_ptr<PolicyWeights> weights, std::shared_ptr<const Tokenizer> tokenizer,
                               size_t num_workers, EngineOptions options)
    : weights_(std::move(weights)),
      tokenizer_(std::move(tokenizer)),
      pool_(resolve_worker_count(num_workers, *weights_)) {
  num_workers = pool_.size();
  // Several CPU engines share the cores rather than each starting a team of
  // every core, which oversubscribes them: with W engines on C threads each
  // gets C / W.
  if (options.num_threads == 0 && weights_on_cpu(*weights_)) {
    options.num_threads = std::max<int64_t>(1, at::get_num_threads() / static_cast<int64_t>(num_workers));
  }
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
                                            const SamplingParams& params, int64_t first_prompt_index) {
  RolloutEngine* engine = acquire();
  try {
    auto completions = engine->generate(prompts, params, {}, first_prompt_index);
    release(engine);
    return completions;
  } catch (...) {
    release(engine);
    throw;
  }
}

std::future<std::vector<Completion>> RolloutWorkers::submit(std::vector<std::vector<int64_t>> prompts,
                                                            SamplingParams params) {
  return pool_.submit([this, prompts = std::move(prompts), params] { return run(prompts, params, 0); });
}

std::vector<Completion> RolloutWorkers::generate(const std::vector<std::vector<int64_t>>& prompts,
                                                 const SamplingParams& params, int64_t first_prompt_index) {
  const size_t parts = std::min(engines_.size(), std::max<size_t>(prompts.size(), 1));
  std::vector<std::future<std::vector<Completion>>> futures;
  size_t begin = 0;
  for (size_t part = 0; part < parts; ++part) {
    size_t end = begin + (prompts.size() - begin) / (parts - part);
    std::vector<std::vector<int64_t>> slice(prompts.begin() + begin, prompts.begin() + end);
    int64_t first = first_prompt_index + static_cast<int64_t>(begin);
    futures.push_back(pool_.submit([this, slice = std::move(slice), params, first] { return run(slice, params, first); }));
    begin = end;
  }
  std::vector<Completion> all;
  for (auto& future : futures) {
    auto part = future.get();
    all.insert(all.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return all;
}

}  // namespace r1kit
