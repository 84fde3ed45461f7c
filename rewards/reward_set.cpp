#include "rewards/reward_set.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/logging.h"
#include "common/thread_pool.h"

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

// A call that enforces its own deadline (a subprocess, a server) gets this much
// longer before the waiter gives up on it, so its own timeout is the one seen.
constexpr double kGraceSeconds = 0.25;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

enum class CallState : uint8_t { kQueued, kRunning, kDone, kAbandoned };

// One task on the pool: one reward on one sample, or on all samples at once.
struct Call {
  size_t reward = 0;
  std::vector<size_t> samples;  // indices into the batch
  CallState state = CallState::kQueued;
  Clock::time_point start;
  std::vector<RewardResult> results;           // one per entry of `samples` when kDone
  RewardOutcome failure = RewardOutcome::kOk;  // kError, kTimeout or kSkipped when it failed
  std::string message;
};

// Shared by the waiter and the tasks; tasks of abandoned calls may outlive score().
struct BatchState {
  std::vector<Sample> samples;
  std::vector<Call> calls;
  std::mutex mutex;
  std::condition_variable done;
  size_t pending = 0;
  Clock::time_point last_progress;
  std::vector<int64_t> timeout_limits;     // (K) max_consecutive_timeouts; 0 = none
  std::vector<int64_t> timeouts_in_a_row;  // (K) the latest finished calls that timed out
};

// Records how a call of `reward` ended. The limit-th timeout in a row skips the
// reward's calls that have not finished: they get the fallback now instead of
// each waiting out its own timeout. Called with the mutex held.
void note_outcome(BatchState& st, size_t reward, RewardOutcome outcome) {
  if (outcome != RewardOutcome::kTimeout) {
    st.timeouts_in_a_row[reward] = 0;
    return;
  }
  const int64_t limit = st.timeout_limits[reward];
  if (++st.timeouts_in_a_row[reward] < limit || limit <= 0) return;
  for (Call& call : st.calls) {
    if (call.reward != reward) continue;
    if (call.state != CallState::kQueued && call.state != CallState::kRunning) continue;
    call.state = CallState::kAbandoned;
    call.failure = RewardOutcome::kSkipped;
    call.message = "not called: the reward timed out " + std::to_string(limit) +
                   " times in a row (max_consecutive_timeouts)";
    --st.pending;
  }
}

void run_call(const std::shared_ptr<BatchState>& st, size_t c,
              const std::shared_ptr<const RewardFn>& fn, bool batched, double timeout_seconds) {
  Call& call = st->calls[c];
  {
    std::lock_guard lock(st->mutex);
    if (call.state == CallState::kAbandoned) return;
    call.state = CallState::kRunning;
    call.start = Clock::now();
    st->last_progress = call.start;
  }
  Deadline deadline = call.start + seconds(timeout_seconds);
  std::vector<RewardResult> results;
  RewardOutcome failure = RewardOutcome::kOk;
  std::string message;
  try {
    if (batched) {
      std::vector<Sample> subset;
      subset.reserve(call.samples.size());
      for (size_t n : call.samples) subset.push_back(st->samples[n]);
      results = fn->score_batch(subset, deadline);
      if (results.size() != subset.size()) {
        failure = RewardOutcome::kError;
        message = "score_batch returned " + std::to_string(results.size()) + " results for " +
                  std::to_string(subset.size()) + " samples";
      }
    } else {
      results.push_back(fn->score_until(st->samples[call.samples[0]], deadline));
    }
  } catch (const RewardTimeout& e) {
    failure = RewardOutcome::kTimeout;
    message = e.what();
  } catch (const std::exception& e) {
    failure = RewardOutcome::kError;
    message = e.what();
  } catch (...) {
    failure = RewardOutcome::kError;
    message = "unknown exception";
  }
  {
    std::lock_guard lock(st->mutex);
    if (call.state == CallState::kAbandoned) return;
    call.results = std::move(results);
    call.failure = failure;
    call.message = std::move(message);
    call.state = CallState::kDone;
    st->last_progress = Clock::now();
    --st->pending;
    note_outcome(*st, call.reward, call.failure);
  }
  st->done.notify_all();
}

double mean_of(const std::vector<double>& xs) {
  double sum = 0.0;
  for (double x : xs) sum += x;
  return xs.empty() ? 0.0 : sum / static_cast<double>(xs.size());
}

// 0.5 -> "0.5", 1.0 -> "1".
std::string number_text(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

const char* failure_word(RewardOutcome outcome) {
  switch (outcome) {
    case RewardOutcome::kError:
      return "error";
    case RewardOutcome::kTimeout:
      return "timeout";
    case RewardOutcome::kSkipped:
      return "skipped";
    default:
      return "ok";
  }
}

}  // namespace

void RewardSpec::visit(ConfigVisitor& v) {
  v.field("name", name, {.required = true});
  v.field("label", label);
  v.field("weight", weight);
  v.field("options", options);
  v.field("fallback", fallback);
  v.field("timeout_seconds", timeout_seconds, {.min = 0.0, .min_exclusive = true});
  v.field("max_consecutive_timeouts", max_consecutive_timeouts, {.min = 0.0});
  v.field("max_failure_fraction", max_failure_fraction, {.min = 0.0, .min_exclusive = true});
  if (!options.is_object()) v.fail("options", "expected an object, got " + options.dump());
}

RewardSet::RewardSet(const std::vector<RewardSpec>& specs, const std::string& source) {
  std::set<std::string> seen;
  for (size_t k = 0; k < specs.size(); ++k) {
    const RewardSpec& spec = specs[k];
    std::string where = source + ": rewards[" + std::to_string(k) + "]";
    if (!seen.insert(spec.metric_name()).second) {
      throw_config_error(where + ": reward \"" + spec.metric_name() +
                         "\" appears twice; give one a distinct \"label\"");
    }
    std::unique_ptr<RewardFn> fn = make_reward(spec.name, spec.options, where + ".options");
    entries_.push_back(
        {spec, std::shared_ptr<const RewardFn>(std::move(fn)), std::make_shared<Counters>()});
  }
}

RewardSet::~RewardSet() = default;

BatchScores RewardSet::score(const std::vector<Sample>& samples, ThreadPool& pool) const {
  const size_t num_samples = samples.size();
  const size_t num_rewards = entries_.size();
  auto st = std::make_shared<BatchState>();
  st->samples = samples;
  for (size_t k = 0; k < num_rewards; ++k) {
    if (num_samples == 0) break;
    if (entries_[k].fn->prefers_batches()) {
      Call call;
      call.reward = k;
      for (size_t n = 0; n < num_samples; ++n) call.samples.push_back(n);
      st->calls.push_back(std::move(call));
    } else {
      for (size_t n = 0; n < num_samples; ++n) {
        Call call;
        call.reward = k;
        call.samples = {n};
        st->calls.push_back(std::move(call));
      }
    }
  }
  double max_timeout = 0.0;
  for (const Entry& e : entries_) max_timeout = std::max(max_timeout, e.spec.timeout_seconds);
  st->pending = st->calls.size();
  st->last_progress = Clock::now();
  st->timeouts_in_a_row.assign(num_rewards, 0);
  for (const Entry& e : entries_) st->timeout_limits.push_back(e.spec.max_consecutive_timeouts);
  for (size_t c = 0; c < st->calls.size(); ++c) {
    const Entry& entry = entries_[st->calls[c].reward];
    pool.post([st, c, fn = entry.fn, batched = entry.fn->prefers_batches(),
               timeout = entry.spec.timeout_seconds] { run_call(st, c, fn, batched, timeout); });
  }

  // Wait, checking deadlines now and then: a running call past its deadline
  // is abandoned (its thread stays busy until the reward returns); queued calls
  // are abandoned when nothing has started or finished for a whole timeout,
  // which happens only when every worker is stuck.
  const auto poll = std::chrono::milliseconds(20);
  {
    std::unique_lock lock(st->mutex);
    Clock::time_point last_scan = Clock::now();
    while (st->pending > 0) {
      st->done.wait_for(lock, poll);
      Clock::time_point now = Clock::now();
      if (st->pending == 0 || now - last_scan < poll) continue;
      last_scan = now;
      bool stalled = now - st->last_progress > seconds(max_timeout + kGraceSeconds);
      for (Call& call : st->calls) {
        const RewardSpec& spec = entries_[call.reward].spec;
        bool late = call.state == CallState::kRunning &&
                    now - call.start > seconds(spec.timeout_seconds + kGraceSeconds);
        bool starved = call.state == CallState::kQueued && stalled;
        if (!late && !starved) continue;
        call.state = CallState::kAbandoned;
        call.failure = RewardOutcome::kTimeout;
        call.message = late ? "no result within " + std::to_string(spec.timeout_seconds) + " s"
                            : "never started: every worker was stuck";
        --st->pending;
        if (late) {
          log_warning() << "reward " << spec.metric_name() << ": a call ran past its deadline of "
                        << spec.timeout_seconds << " s; scored as a timeout, its worker stays busy";
        }
        note_outcome(*st, call.reward, RewardOutcome::kTimeout);
      }
    }
  }

  BatchScores out;
  out.totals.assign(num_samples, 0.0);
  out.values.assign(num_samples, std::vector<std::optional<double>>(num_rewards));
  out.outcomes.assign(num_samples, std::vector<RewardOutcome>(num_rewards, RewardOutcome::kOk));
  out.components.assign(num_samples, std::vector<std::map<std::string, double>>(num_rewards));
  out.info.assign(num_samples, std::vector<nlohmann::json>(num_rewards));
  out.errors.assign(num_rewards, 0);
  out.timeouts.assign(num_rewards, 0);
  out.skipped.assign(num_rewards, 0);
  out.first_failures.assign(num_rewards, "");
  std::vector<std::string> first_skip(num_rewards);
  for (const Entry& e : entries_) out.names.push_back(e.spec.metric_name());

  std::lock_guard lock(st->mutex);  // abandoned tasks may still be finishing
  for (Call& call : st->calls) {
    const RewardSpec& spec = entries_[call.reward].spec;
    for (size_t i = 0; i < call.samples.size(); ++i) {
      size_t n = call.samples[i];
      size_t k = call.reward;
      RewardOutcome outcome = call.failure;
      std::string message = call.message;
      if (outcome == RewardOutcome::kOk) {
        RewardResult& result = call.results[i];
        if (result.value && !std::isfinite(*result.value)) {
          outcome = RewardOutcome::kError;
          message = "returned a non-finite value";
        } else {
          out.values[n][k] = result.value;
          out.outcomes[n][k] = result.value ? RewardOutcome::kOk : RewardOutcome::kNotApplicable;
          out.components[n][k] = std::move(result.components);
          out.info[n][k] = std::move(result.info);
        }
      }
      if (outcome == RewardOutcome::kError || outcome == RewardOutcome::kTimeout ||
          outcome == RewardOutcome::kSkipped) {
        out.values[n][k] = spec.fallback;
        out.outcomes[n][k] = outcome;
        out.info[n][k] = {{failure_word(outcome), message}};
        (outcome == RewardOutcome::kError     ? out.errors[k]
         : outcome == RewardOutcome::kTimeout ? out.timeouts[k]
                                              : out.skipped[k]) += 1;
        // A skip says less than the timeouts that caused it: quoted only when alone.
        std::string& first =
            outcome == RewardOutcome::kSkipped ? first_skip[k] : out.first_failures[k];
        if (first.empty()) first = std::string(failure_word(outcome)) + ": " + message;
      }
      if (out.values[n][k]) out.totals[n] += spec.weight * *out.values[n][k];
    }
  }
  for (size_t k = 0; k < num_rewards; ++k) {
    if (out.first_failures[k].empty()) out.first_failures[k] = first_skip[k];
    Counters& counters = *entries_[k].counters;
    counters.errors += out.errors[k];
    counters.timeouts += out.timeouts[k];
    counters.skipped += out.skipped[k];
    counters.samples += static_cast<int64_t>(num_samples);
    if (out.first_failures[k].empty()) continue;
    {
      std::lock_guard counters_lock(counters.mutex);
      if (counters.first_failure.empty()) counters.first_failure = out.first_failures[k];
    }
    auto warning = log_warning();
    warning << "reward " << out.names[k] << ": " << out.errors[k] << " errors, " << out.timeouts[k]
            << " timeouts";
    if (out.skipped[k] > 0) {
      warning << ", " << out.skipped[k] << " skipped after "
              << entries_[k].spec.max_consecutive_timeouts << " timeouts in a row";
    }
    warning << " in a batch of " << num_samples << "; scored " << entries_[k].spec.fallback
            << "; first: " << out.first_failures[k];
  }
  return out;
}

void RewardSet::check_failures(const std::vector<RewardFailures>& failures,
                               const std::string& what) const {
  for (size_t k = 0; k < entries_.size() && k < failures.size(); ++k) {
    const RewardFailures& f = failures[k];
    const RewardSpec& spec = entries_[k].spec;
    if (f.failed == 0 || f.samples == 0) continue;
    double share = static_cast<double>(f.failed) / static_cast<double>(f.samples);
    if (share < spec.max_failure_fraction) continue;
    std::string why =
        f.first_failure.empty() ? "the failures were on another rank" : f.first_failure;
    throw Error("reward " + spec.metric_name() + " failed on " + std::to_string(f.failed) + " of " +
                std::to_string(f.samples) + " samples of " + what + " (max_failure_fraction " +
                number_text(spec.max_failure_fraction) +
                "), so the run stops; first failure: " + why);
  }
}

std::vector<std::string> RewardSet::failure_summary() const {
  std::vector<std::string> lines;
  for (const Entry& e : entries_) {
    Counters& c = *e.counters;
    if (c.errors + c.timeouts + c.skipped == 0) continue;
    std::lock_guard lock(c.mutex);
    lines.push_back("reward " + e.spec.metric_name() + ": " + std::to_string(c.errors.load()) +
                    " errors, " + std::to_string(c.timeouts.load()) + " timeouts, " +
                    std::to_string(c.skipped.load()) + " skipped of " +
                    std::to_string(c.samples.load()) + " samples; first: " + c.first_failure);
  }
  return lines;
}

void RewardSet::warn_about_failures(const std::string& what) const {
  for (const std::string& line : failure_summary()) log_warning() << what << ": " << line;
}

std::vector<RewardFailures> BatchScores::failure_counts() const {
  std::vector<RewardFailures> counts(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    counts[k].failed = errors[k] + timeouts[k] + skipped[k];
    counts[k].samples = static_cast<int64_t>(values.size());
    counts[k].first_failure = first_failures[k];
  }
  return counts;
}

std::map<std::string, double> BatchScores::metrics() const {
  std::map<std::string, double> m;
  for (size_t k = 0; k < names.size(); ++k) {
    std::vector<double> applicable;
    std::map<std::string, std::vector<double>> parts;
    int64_t not_applicable = 0;
    for (size_t n = 0; n < values.size(); ++n) {
      if (values[n][k]) {
        applicable.push_back(*values[n][k]);
      } else {
        ++not_applicable;
      }
      for (const auto& [part, value] : components[n][k]) parts[part].push_back(value);
    }
    double mean = mean_of(applicable);
    double var = 0.0;
    for (double x : applicable) var += (x - mean) * (x - mean);
    double std_dev =
        applicable.size() > 1 ? std::sqrt(var / static_cast<double>(applicable.size() - 1)) : 0.0;
    m["rewards/" + names[k] + "/mean"] = mean;
    m["rewards/" + names[k] + "/std"] = std_dev;
    for (const auto& [part, xs] : parts)
      m["rewards/" + names[k] + "/" + part + "/mean"] = mean_of(xs);
    m["reward/" + names[k] + "/errors"] = static_cast<double>(errors[k]);
    m["reward/" + names[k] + "/timeouts"] = static_cast<double>(timeouts[k]);
    m["reward/" + names[k] + "/skipped"] = static_cast<double>(skipped[k]);
    m["reward/" + names[k] + "/not_applicable"] = static_cast<double>(not_applicable);
  }
  return m;
}

}  // namespace r1kit
