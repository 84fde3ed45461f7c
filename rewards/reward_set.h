// The recipe's list of rewards, built once and used to score batches: each
// (reward, sample) call runs on the shared ThreadPool with its own deadline; a
// call that throws, returns a non-finite value or runs past its deadline gets
// the reward's fallback score and is counted. Nothing stops the run and every
// sample gets a total. score() may be called from one thread at a time that is
// not a pool worker; the RewardSet owns its rewards.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "rewards/reward.h"

namespace r1kit {

class ThreadPool;

// One entry of the recipe's `rewards` list.
struct RewardSpec {
  std::string name;     // registry name: math_answer, think_format, subprocess, ...
  std::string label;    // metric name; "" = `name` (set it to use one reward twice)
  double weight = 1.0;  // TRL's reward_weights: total = sum(weight * value)
  nlohmann::json options = nlohmann::json::object();  // handed to the reward's constructor
  double fallback = 0.0;          // the value used when a call throws or times out
  double timeout_seconds = 10.0;  // deadline per call, from the moment it starts running

  void visit(ConfigVisitor& v);
  const std::string& metric_name() const { return label.empty() ? name : label; }
};

// How one (reward, sample) call ended.
enum class RewardOutcome : uint8_t { kOk, kNotApplicable, kError, kTimeout };

// The scores of one batch, samples in input order.
struct BatchScores {
  std::vector<std::string> names;  // (K) metric names of the rewards
  std::vector<double> totals;      // (N) weighted sums over applicable rewards
  // (N, K) unweighted values; nullopt where not applicable. Errors and
  // timeouts hold the fallback.
  std::vector<std::vector<std::optional<double>>> values;
  std::vector<std::vector<RewardOutcome>> outcomes;                    // (N, K)
  std::vector<std::vector<std::map<std::string, double>>> components;  // (N, K)
  std::vector<std::vector<nlohmann::json>> info;  // (N, K); errors say why here
  std::vector<int64_t> errors;                    // (K) calls that threw or returned NaN/inf
  std::vector<int64_t> timeouts;                  // (K) calls past their deadline

  // TRL/verl-named metrics of this batch: rewards/<name>/mean and /std (over
  // applicable samples), rewards/<name>/<component>/mean, reward/<name>/errors,
  // reward/<name>/timeouts, reward/<name>/not_applicable.
  std::map<std::string, double> metrics() const;
};

class RewardSet {
 public:
  // Builds every reward; `source` names the recipe in errors. Throws a config
  // error for an unknown name, bad options or a repeated metric name.
  RewardSet(const std::vector<RewardSpec>& specs, const std::string& source);
  ~RewardSet();
  RewardSet(const RewardSet&) = delete;
  RewardSet& operator=(const RewardSet&) = delete;

  // Scores every sample with every reward on `pool`; never throws for a
  // reward's failure. Must not be called from a task running on `pool`.
  BatchScores score(const std::vector<Sample>& samples, ThreadPool& pool) const;

  size_t size() const { return entries_.size(); }
  const RewardSpec& spec(size_t k) const { return entries_[k].spec; }
  // Errors and timeouts since construction, per reward: for end-of-run reports.
  int64_t total_errors(size_t k) const { return entries_[k].counters->errors.load(); }
  int64_t total_timeouts(size_t k) const { return entries_[k].counters->timeouts.load(); }

 private:
  struct Counters {
    std::atomic<int64_t> errors{0};
    std::atomic<int64_t> timeouts{0};
  };
  struct Entry {
    RewardSpec spec;
    std::shared_ptr<const RewardFn> fn;  // shared with calls that outlive a timeout
    std::shared_ptr<Counters> counters;
  };
  std::vector<Entry> entries_;
};

}  // namespace r1kit
