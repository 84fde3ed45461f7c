// Rollouts that run ahead of the learner (trainer.max_staleness = K > 0): a
// producer thread samples step s's batch with the weights after step
// s - 1 - K, on its own copy of the policy and its own share of the cores,
// while the trainer thread learns on earlier batches. The schedule is fixed,
// so a seed fixes the run and checkpoints carry the batches sampled ahead.
// The trainer thread calls every method; the producer is internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "learner/rollout_collector.h"
#include "learner/step_metrics.h"
#include "rollout/engine.h"

namespace r1kit {

// One step's batch as the producer left it.
struct CollectedBatch {
  int64_t step = 0;          // the RL step it is for
  int64_t weights_step = 0;  // the learner step whose weights sampled it (0 = the initial ones)
  RolloutBatch batch;        // advantages not yet assigned
  StepMetrics metrics;       // the rollout side's: rewards, lengths, time/generate, ...
  double rollout_idle_seconds = 0;  // the producer's wait for weights before sampling it
};

// Checkpoint form of a batch sampled ahead: every field, floats exact.
nlohmann::json collected_batch_to_json(const CollectedBatch& collected);
CollectedBatch collected_batch_from_json(const nlohmann::json& json, const std::string& source);

// Parameter name -> tensor: one version of the policy's weights.
using NamedWeights = std::vector<std::pair<std::string, at::Tensor>>;

// Copies `values` into the model of `weights` through publish(): engines
// see the new version from their next call.
void load_named_weights(PolicyWeights& weights, const NamedWeights& values);

class AsyncRollouts {
 public:
  // Samples one step's batch with the weights the producer's engines see
  // (`rollout_weights`); called on the producer thread only.
  using Collect = std::function<RolloutBatch(int64_t step, StepMetrics& metrics)>;

  // `rollout_weights`: the producer's own copy of the policy, which only it
  // updates (from the versions publish() hands over). `threads`: the OpenMP
  // threads of the producer's thread (0 = unchanged).
  AsyncRollouts(std::shared_ptr<PolicyWeights> rollout_weights, int64_t max_staleness,
                int64_t threads, Collect collect);
  ~AsyncRollouts();  // stops the producer after the batch it is sampling
  AsyncRollouts(const AsyncRollouts&) = delete;
  AsyncRollouts& operator=(const AsyncRollouts&) = delete;

  // Starts the producer at step `first_step` (steps up to `last_step`), with
  // `queued` (steps first_step - queued.size() ...) already sampled and
  // `rollout_weights` holding the weights after learner step `weights_step`.
  void start(int64_t first_step, int64_t last_step, int64_t weights_step,
             std::vector<CollectedBatch> queued);
  bool started() const { return producer_.joinable(); }

  // The learner step whose weights step `step`'s batch is sampled with.
  int64_t weights_step_for(int64_t step) const;

  // Blocks until step `step`'s batch is sampled and hands it over; the wait
  // is its learner idle time. Rethrows the producer's failure.
  CollectedBatch take(int64_t step, double* learner_idle_seconds);

  // The weights after learner step `step` (tensors the caller no longer
  // changes). Call once per step, in order; a version no batch needs is
  // dropped at once.
  void publish(int64_t step, NamedWeights weights);
  bool needs_weights_of(int64_t step) const;

  // Waits until every batch sampled from weights older than step `step`'s
  // is done (the producer then waits for publish(step, ...)) and returns
  // copies of those not yet taken: what a checkpoint after `step` saves.
  std::vector<CollectedBatch> pending_after(int64_t step);

 private:
  void produce(int64_t first_step, int64_t last_step);
  // Sleeps on changed_ until `ready` holds or the producer failed/stopped.
  void wait(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready);

  std::shared_ptr<PolicyWeights> rollout_weights_;
  const int64_t max_staleness_;
  const int64_t threads_;
  Collect collect_;
  int64_t last_step_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<CollectedBatch> ready_;           // sampled, not yet taken, in step order
  std::map<int64_t, NamedWeights> published_;  // learner step -> weights not yet loaded
  int64_t rollout_weights_step_ = 0;           // what rollout_weights_ holds
  int64_t sampled_through_ = 0;                // the last step whose batch is done
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::thread producer_;
};

}  // namespace r1kit
