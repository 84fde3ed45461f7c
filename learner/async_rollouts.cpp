#include "learner/async_rollouts.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "common/elapsed.h"
#include "common/error.h"
#include "common/thread_limit.h"

namespace r1kit {
namespace {

nlohmann::json sample_to_json(const TrainingSample& sample) {
  return {{"tokens", sample.tokens},
          {"prompt_length", sample.prompt_length},
          {"old_logprobs", sample.old_logprobs},
          {"advantage", sample.advantage},
          {"in_loss", sample.in_loss},
          {"observation_mask", sample.observation_mask},
          {"token_advantages", sample.token_advantages},
          {"returns", sample.returns},
          {"old_values", sample.old_values}};
}

TrainingSample sample_from_json(const nlohmann::json& json) {
  TrainingSample sample;
  json.at("tokens").get_to(sample.tokens);
  json.at("prompt_length").get_to(sample.prompt_length);
  json.at("old_logprobs").get_to(sample.old_logprobs);
  json.at("advantage").get_to(sample.advantage);
  json.at("in_loss").get_to(sample.in_loss);
  json.at("observation_mask").get_to(sample.observation_mask);
  json.at("token_advantages").get_to(sample.token_advantages);
  json.at("returns").get_to(sample.returns);
  json.at("old_values").get_to(sample.old_values);
  return sample;
}

nlohmann::json round_to_json(const AdvantageRound& round) {
  const at::Tensor rewards = round.rewards.to(at::kFloat).contiguous();
  return {{"rewards", std::vector<float>(rewards.data_ptr<float>(),
                                         rewards.data_ptr<float>() + rewards.numel())},
          {"group_size", round.group_size},
          {"first", round.first},
          {"begin", round.begin},
          {"kept", round.kept}};
}

AdvantageRound round_from_json(const nlohmann::json& json) {
  AdvantageRound round;
  round.rewards = at::tensor(json.at("rewards").get<std::vector<float>>(), at::kFloat);
  json.at("group_size").get_to(round.group_size);
  json.at("first").get_to(round.first);
  json.at("begin").get_to(round.begin);
  json.at("kept").get_to(round.kept);
  return round;
}

}  // namespace

nlohmann::json collected_batch_to_json(const CollectedBatch& collected) {
  nlohmann::json samples = nlohmann::json::array();
  for (const TrainingSample& sample : collected.batch.samples)
    samples.push_back(sample_to_json(sample));
  nlohmann::json rounds = nlohmann::json::array();
  for (const AdvantageRound& round : collected.batch.rounds) rounds.push_back(round_to_json(round));
  return {{"step", collected.step},
          {"weights_step", collected.weights_step},
          {"samples", std::move(samples)},
          {"rounds", std::move(rounds)},
          {"logged", collected.batch.logged},
          {"logged_samples", collected.batch.logged_samples},
          {"metrics", collected.metrics.values()},
          {"rollout_idle_seconds", collected.rollout_idle_seconds}};
}

CollectedBatch collected_batch_from_json(const nlohmann::json& json, const std::string& source) {
  try {
    CollectedBatch collected;
    json.at("step").get_to(collected.step);
    json.at("weights_step").get_to(collected.weights_step);
    for (const nlohmann::json& sample : json.at("samples"))
      collected.batch.samples.push_back(sample_from_json(sample));
    for (const nlohmann::json& round : json.at("rounds"))
      collected.batch.rounds.push_back(round_from_json(round));
    collected.batch.logged = json.at("logged").get<std::vector<nlohmann::json>>();
    json.at("logged_samples").get_to(collected.batch.logged_samples);
    for (const auto& [name, value] : json.at("metrics").items())
      collected.metrics.set(name, value.get<double>());
    json.at("rollout_idle_seconds").get_to(collected.rollout_idle_seconds);
    return collected;
  } catch (const nlohmann::json::exception& error) {
    throw_data_error(source + ": malformed batch sampled ahead: " + error.what());
  }
}

void load_named_weights(PolicyWeights& weights, const NamedWeights& values) {
  weights.publish([&](Transformer& model) {
    at::NoGradGuard no_grad;
    auto parameters = model->named_parameters();
    for (const auto& [name, value] : values) parameters[name].copy_(value);
  });
}

AsyncRollouts::AsyncRollouts(std::shared_ptr<PolicyWeights> rollout_weights, int64_t max_staleness,
                             int64_t threads, Collect collect)
    : rollout_weights_(std::move(rollout_weights)),
      max_staleness_(max_staleness),
      threads_(threads),
      collect_(std::move(collect)) {
  TORCH_CHECK(max_staleness_ > 0, "AsyncRollouts: max_staleness must be positive");
}

AsyncRollouts::~AsyncRollouts() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (producer_.joinable()) producer_.join();
}

int64_t AsyncRollouts::weights_step_for(int64_t step) const {
  return std::max<int64_t>(0, step - 1 - max_staleness_);
}

bool AsyncRollouts::needs_weights_of(int64_t step) const {
  return step + 1 + max_staleness_ <= last_step_;
}

void AsyncRollouts::start(int64_t first_step, int64_t last_step, int64_t weights_step,
                          std::vector<CollectedBatch> queued) {
  TORCH_CHECK(!producer_.joinable(), "AsyncRollouts: started twice");
  last_step_ = last_step;
  rollout_weights_step_ = weights_step;
  sampled_through_ = first_step - 1;
  for (CollectedBatch& collected : queued) ready_.push_back(std::move(collected));
  producer_ = std::thread([this, first_step, last_step] { produce(first_step, last_step); });
}

void AsyncRollouts::wait(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready) {
  changed_.wait(lock, [&] { return stopping_ || failure_ || ready(); });
}

void AsyncRollouts::produce(int64_t first_step, int64_t last_step) {
  const ThreadLimit thread_limit(threads_);
  try {
    for (int64_t step = first_step; step <= last_step; ++step) {
      const int64_t needed = weights_step_for(step);
      NamedWeights weights;
      const auto idle_start = SteadyClock::now();
      {
        std::unique_lock lock(mutex_);
        wait(lock, [&] { return rollout_weights_step_ >= needed || published_.count(needed); });
        if (stopping_ || failure_) return;
        if (rollout_weights_step_ < needed) {
          weights = std::move(published_.at(needed));
          published_.erase(published_.begin(), published_.upper_bound(needed));
        }
      }
      CollectedBatch collected;
      collected.rollout_idle_seconds = seconds_since(idle_start);
      if (!weights.empty()) {
        load_named_weights(*rollout_weights_, weights);
        std::lock_guard lock(mutex_);
        rollout_weights_step_ = needed;
      }
      weights.clear();
      collected.step = step;
      collected.weights_step = needed;
      collected.batch = collect_(step, collected.metrics);
      {
        std::lock_guard lock(mutex_);
        ready_.push_back(std::move(collected));
        sampled_through_ = step;
      }
      changed_.notify_all();
    }
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      failure_ = std::current_exception();
    }
    changed_.notify_all();
  }
}

CollectedBatch AsyncRollouts::take(int64_t step, double* learner_idle_seconds) {
  const auto start = SteadyClock::now();
  std::unique_lock lock(mutex_);
  wait(lock, [&] { return !ready_.empty(); });
  if (learner_idle_seconds) *learner_idle_seconds = seconds_since(start);
  if (ready_.empty()) {
    if (failure_) std::rethrow_exception(failure_);
    TORCH_CHECK(false, "AsyncRollouts: stopped before step ", step, "'s batch");
  }
  TORCH_CHECK(ready_.front().step == step, "AsyncRollouts: step ", step, " asked for, but step ",
              ready_.front().step, "'s batch is next");
  CollectedBatch collected = std::move(ready_.front());
  ready_.pop_front();
  return collected;
}

void AsyncRollouts::publish(int64_t step, NamedWeights weights) {
  if (!needs_weights_of(step)) return;
  {
    std::lock_guard lock(mutex_);
    published_[step] = std::move(weights);
  }
  changed_.notify_all();
}

std::vector<CollectedBatch> AsyncRollouts::pending_after(int64_t step) {
  const int64_t through = std::min(last_step_, step + max_staleness_);
  std::unique_lock lock(mutex_);
  wait(lock, [&] { return sampled_through_ >= through; });
  if (failure_) std::rethrow_exception(failure_);
  return {ready_.begin(), ready_.end()};
}

}  // namespace r1kit
