// The recipe's list of rewards, built once and used to score batches: each
// (reward, sample) call runs on the shared ThreadPool with its own deadline; a
// call that throws, returns a non-finite value or runs past its deadline gets
// the reward's fallback score and is counted, and a reward that times out
// max_consecutive_timeouts times in a row is skipped for the rest of the batch.
// score() never throws for a reward's failure and every sample gets a total;
// stopping a run on too many failures is the caller's (check_failures()).
// score() may be called from one thread at a time that is not a pool worker;
// the RewardSet owns its rewards.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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
  double fallback = 0.0;          // the value used when a call throws, times out or is skipped
  double timeout_seconds = 10.0;  // deadline per call, from the moment it starts running
  // Timeouts in a row after which the reward's remaining calls of the batch
  // are skipped (fallback at once, counted). 0 = never skip.
  int64_t max_consecutive_timeouts = 3;
  // Share of a training step's samples that may fail (error, timeout or skip)
  // before the run stops with the reward's first error. 1.0 = stop only when
  // every sample failed; above 1 = never stop.
  double max_failure_fraction = 1.0;

  void visit(ConfigVisitor& v);
  const std::string& metric_name() const { return label.empty() ? name : label; }
};

// How one (reward, sample) call ended.
// kSkipped: not called, the reward timed out max_consecutive_timeouts times in a row.
enum class RewardOutcome : uint8_t { kOk, kNotApplicable, kError, kTimeout, kSkipped };

// How often one reward failed over some samples (a batch, a training step).
struct RewardFailures {
  int64_t failed = 0;         // errors + timeouts + skipped: samples that got the fallback
  int64_t samples = 0;        // samples scored, failed ones included
  std::string first_failure;  // why the first failed call failed; "" when none did here
};

// The scores of one batch, samples in input order.
struct BatchScores {
  std::vector<std::string> names;  // (K) metric names of the rewards
  std::vector<double> totals;      // (N) weighted sums over applicable rewards
  // (N, K) unweighted values; nullopt where not applicable. Errors, timeouts
  // and skipped calls hold the fallback.
  std::vector<std::vector<std::optional<double>>> values;
  std::vector<std::vector<RewardOutcome>> outcomes;                    // (N, K)
  std::vector<std::vector<std::map<std::string, double>>> components;  // (N, K)
  std::vector<std::vector<nlohmann::json>> info;  // (N, K); errors say why here
  std::vector<int64_t> errors;                    // (K) calls that threw or returned NaN/inf
  std::vector<int64_t> timeouts;                  // (K) calls past their deadline
  std::vector<int64_t> skipped;                   // (K) samples not scored: timeouts in a row
  std::vector<std::string> first_failures;        // (K) why the first failed call failed; ""

  // (K) per reward: its failed samples, the batch size and its first failure.
  std::vector<RewardFailures> failure_counts() const;

  // TRL/verl-named metrics of this batch: rewards/<name>/mean and /std (over
  // applicable samples), rewards/<name>/<component>/mean, reward/<name>/errors,
  // reward/<name>/timeouts, reward/<name>/skipped, reward/<name>/not_applicable.
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
  // Fail fast: throws an r1kit::Error (runtime kind) for the first reward whose
  // failed share of `failures` (one entry per reward, summed over `what`: "step
  // 3") reaches its max_failure_fraction, quoting the reward's first failure.
  void check_failures(const std::vector<RewardFailures>& failures, const std::string& what) const;

  // Errors, timeouts and skipped calls since construction, per reward: for end-of-run reports.
  int64_t total_errors(size_t k) const { return entries_[k].counters->errors.load(); }
  int64_t total_timeouts(size_t k) const { return entries_[k].counters->timeouts.load(); }
  int64_t total_skipped(size_t k) const { return entries_[k].counters->skipped.load(); }
  // One line per reward that failed since construction ("reward X: 3 errors, 0
  // timeouts, 0 skipped of 40 samples; first: why"); empty when none did.
  std::vector<std::string> failure_summary() const;
  // Logs failure_summary() as a warning headed by `what` ("training"); nothing when empty.
  void warn_about_failures(const std::string& what) const;

 private:
  struct Counters {
    std::atomic<int64_t> errors{0};
    std::atomic<int64_t> timeouts{0};
    std::atomic<int64_t> skipped{0};
    std::atomic<int64_t> samples{0};
    std::mutex mutex;           // guards first_failure
    std::string first_failure;  // why its first failed call failed
  };
  struct Entry {
    RewardSpec spec;
    std::shared_ptr<const RewardFn> fn;  // shared with calls that outlive a timeout
    std::shared_ptr<Counters> counters;
  };
  std::vector<Entry> entries_;
};

}  // namespace r1kit
