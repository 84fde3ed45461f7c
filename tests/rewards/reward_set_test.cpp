// RewardSet: weights, not-applicable values, errors, timeouts, the circuit
// breaker on timeouts in a row, the fail-fast check and metrics.
#include "rewards/reward_set.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "common/error.h"
#include "common/thread_pool.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

// Scores by the completion text: "err" throws, "nan" returns NaN, "sleep" sleeps
// 2 s, "skip" is not applicable, otherwise the completion's length.
class ScriptedReward : public RewardFn {
 public:
  RewardResult score(const Sample& s) const override {
    if (s.completion == "err") throw std::runtime_error("boom");
    if (s.completion == "nan") return {.value = std::nan("")};
    if (s.completion == "sleep") std::this_thread::sleep_for(std::chrono::seconds(2));
    if (s.completion == "skip") return {};
    return {.value = static_cast<double>(s.completion.size()),
            .components = {{"half", s.completion.size() / 2.0}}};
  }
};
REGISTER_REWARD("test_scripted", ScriptedReward);

class ConstantReward : public RewardFn {
 public:
  ConstantReward(const nlohmann::json& options, const std::string&)
      : value_(options.value("value", 1.0)) {}
  RewardResult score(const Sample&) const override { return {.value = value_}; }

 private:
  double value_;
};
REGISTER_REWARD("test_constant", ConstantReward);

// Keeps its deadline like a subprocess or a server: "hang" waits for it and
// gives up with a timeout; anything else scores 1.
class DeadlineReward : public RewardFn {
 public:
  RewardResult score(const Sample& s) const override {
    return score_until(s, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  }
  RewardResult score_until(const Sample& s, Deadline deadline) const override {
    if (s.completion != "hang") return {.value = 1.0};
    std::this_thread::sleep_until(deadline);
    throw RewardTimeout("no reply");
  }
};
REGISTER_REWARD("test_deadline", DeadlineReward);

std::vector<Sample> samples_of(const std::vector<std::string>& completions) {
  std::vector<Sample> out;
  for (const auto& c : completions) out.push_back(Sample{.completion = c});
  return out;
}

RewardSpec spec(std::string name, double weight,
                nlohmann::json options = nlohmann::json::object()) {
  RewardSpec s;
  s.name = std::move(name);
  s.weight = weight;
  s.options = std::move(options);
  return s;
}

TEST(RewardSet, WeightedTotalSkipsNotApplicable) {
  ThreadPool pool(2);
  RewardSet set({spec("test_scripted", 2.0), spec("test_constant", 0.5, {{"value", 4.0}})}, "test");
  BatchScores scores = set.score(samples_of({"abc", "skip", "abcdef"}), pool);
  ASSERT_EQ(scores.totals.size(), 3u);
  EXPECT_DOUBLE_EQ(scores.totals[0], 2.0 * 3 + 0.5 * 4);
  EXPECT_DOUBLE_EQ(scores.totals[1], 0.5 * 4);  // the scripted reward does not apply
  EXPECT_DOUBLE_EQ(scores.totals[2], 2.0 * 6 + 0.5 * 4);
  EXPECT_EQ(scores.outcomes[1][0], RewardOutcome::kNotApplicable);
  auto m = scores.metrics();
  EXPECT_DOUBLE_EQ(m.at("rewards/test_scripted/mean"), 4.5);  // mean over the two that apply
  EXPECT_DOUBLE_EQ(m.at("rewards/test_scripted/half/mean"), 2.25);
  EXPECT_DOUBLE_EQ(m.at("rewards/test_constant/mean"), 4.0);
  EXPECT_DOUBLE_EQ(m.at("reward/test_scripted/not_applicable"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("reward/test_scripted/errors"), 0.0);
}

TEST(RewardSet, ErrorsGetTheFallbackAndAreCounted) {
  ThreadPool pool(2);
  RewardSpec s = spec("test_scripted", 1.0);
  s.fallback = -1.0;
  RewardSet set({s}, "test");
  BatchScores scores = set.score(samples_of({"err", "nan", "ab", "err"}), pool);
  EXPECT_EQ(scores.errors[0], 3);
  EXPECT_EQ(scores.timeouts[0], 0);
  EXPECT_DOUBLE_EQ(scores.totals[0], -1.0);
  EXPECT_DOUBLE_EQ(scores.totals[1], -1.0);
  EXPECT_DOUBLE_EQ(scores.totals[2], 2.0);
  EXPECT_EQ(scores.info[0][0]["error"], "boom");
  EXPECT_EQ(set.total_errors(0), 3);
  EXPECT_DOUBLE_EQ(scores.metrics().at("reward/test_scripted/errors"), 3.0);
}

TEST(RewardSet, SlowCallsTimeOutAndTheBatchFinishes) {
  ThreadPool pool(2);
  RewardSpec s = spec("test_scripted", 1.0);
  s.timeout_seconds = 0.2;
  s.fallback = 0.25;
  s.max_consecutive_timeouts = 0;  // the starved calls below time out, not skipped
  RewardSet set({s}, "test");
  auto start = std::chrono::steady_clock::now();
  // Both workers get stuck on the sleeps; the last samples never start.
  BatchScores scores = set.score(samples_of({"sleep", "sleep", "abc", "ab"}), pool);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 1.9);
  EXPECT_EQ(scores.timeouts[0], 4);
  for (double total : scores.totals) EXPECT_DOUBLE_EQ(total, 0.25);
  EXPECT_DOUBLE_EQ(scores.metrics().at("reward/test_scripted/timeouts"), 4.0);
  pool.join();  // let the sleeping calls finish before the set goes away
}

TEST(RewardSet, TimeoutsInARowSkipTheRestOfTheBatch) {
  ThreadPool pool(1);  // one worker: the calls run in sample order
  RewardSpec s = spec("test_deadline", 1.0);
  s.timeout_seconds = 0.1;
  s.fallback = -1.0;
  RewardSet set({s}, "test");
  // An answer between timeouts starts the count again.
  std::vector<std::string> completions = {"hang", "hang", "ok", "hang", "hang", "hang", "ok"};
  for (int i = 0; i < 10; ++i) completions.push_back("hang");
  auto start = std::chrono::steady_clock::now();
  BatchScores scores = set.score(samples_of(completions), pool);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(scores.timeouts[0], 5);
  EXPECT_EQ(scores.skipped[0], 11);
  EXPECT_LT(seconds, 1.2);  // 15 timeouts of 0.1 s would take 1.5 s
  EXPECT_DOUBLE_EQ(scores.totals[2], 1.0);
  EXPECT_EQ(scores.outcomes[5][0], RewardOutcome::kTimeout);
  EXPECT_EQ(scores.outcomes[6][0], RewardOutcome::kSkipped);  // would have scored 1
  EXPECT_DOUBLE_EQ(scores.totals[6], -1.0);
  EXPECT_EQ(scores.first_failures[0], "timeout: no reply");
  EXPECT_DOUBLE_EQ(scores.metrics().at("reward/test_deadline/skipped"), 11.0);
  EXPECT_EQ(set.total_skipped(0), 11);
  pool.join();

  // Turned off: every call waits out its own timeout.
  s.max_consecutive_timeouts = 0;
  RewardSet patient({s}, "test");
  ThreadPool another(1);
  BatchScores all = patient.score(samples_of({"hang", "hang", "hang", "hang"}), another);
  EXPECT_EQ(all.timeouts[0], 4);
  EXPECT_EQ(all.skipped[0], 0);
}

TEST(RewardSet, FailingOnTheWholeBatchStopsTheRun) {
  ThreadPool pool(2);
  RewardSpec s = spec("test_scripted", 1.0);
  RewardSet set({s}, "recipe.json");
  BatchScores some = set.score(samples_of({"err", "ab", "err", "abc"}), pool);
  EXPECT_NO_THROW(set.check_failures(some.failure_counts(), "step 1"));
  BatchScores all = set.score(samples_of({"err", "nan", "err"}), pool);
  try {
    set.check_failures(all.failure_counts(), "step 2");
    FAIL() << "a reward that failed on every sample did not stop the run";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime);
    EXPECT_EQ(std::string(e.what()),
              "reward test_scripted failed on 3 of 3 samples of step 2 (max_failure_fraction 1), "
              "so the run stops; first failure: error: boom");
  }
  // A lower share stops sooner.
  s.max_failure_fraction = 0.5;
  RewardSet strict({s}, "recipe.json");
  EXPECT_THROW(strict.check_failures(some.failure_counts(), "step 1"), Error);
  std::vector<std::string> summary = set.failure_summary();
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0],
            "reward test_scripted: 5 errors, 0 timeouts, 0 skipped of 7 samples; first: error: "
            "boom");
  EXPECT_TRUE(strict.failure_summary().empty());
}

TEST(RewardSet, ManySamplesKeepTheirOrder) {
  ThreadPool pool(2);
  RewardSet set({spec("test_scripted", 1.0)}, "test");
  std::vector<std::string> completions;
  for (int i = 0; i < 500; ++i) completions.push_back(std::string(i % 17, 'x'));
  BatchScores scores = set.score(samples_of(completions), pool);
  ASSERT_EQ(scores.totals.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_DOUBLE_EQ(scores.totals[i], i % 17);
}

TEST(RewardSet, UnknownNameListsTheKnownOnes) {
  try {
    RewardSet set({spec("math_anwser", 1.0)}, "recipe.json");
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("recipe.json: rewards[0]"), std::string::npos) << what;
    EXPECT_NE(what.find("did you mean \"math_answer\""), std::string::npos) << what;
    EXPECT_NE(what.find("think_format"), std::string::npos) << what;
  }
}

TEST(RewardSet, RepeatedNamesNeedLabels) {
  EXPECT_THROW(RewardSet({spec("test_constant", 1.0), spec("test_constant", 2.0)}, "r.json"),
               Error);
  RewardSpec second = spec("test_constant", 2.0);
  second.label = "constant_2";
  RewardSet set({spec("test_constant", 1.0), second}, "r.json");
  ThreadPool pool(1);
  EXPECT_EQ(set.score(samples_of({"a"}), pool).names,
            (std::vector<std::string>{"test_constant", "constant_2"}));
}

TEST(RewardRegistry, DuplicatesAreRejected) {
  EXPECT_THROW(register_reward("math_answer",
                               [](const nlohmann::json&, const std::string&) {
                                 return std::unique_ptr<RewardFn>();
                               }),
               Error);
}

TEST(RewardRegistry, RegisterRewardLinesFillTheRegistry) {
  EXPECT_TRUE(reward_registry().contains("test_scripted"));
  EXPECT_TRUE(reward_registry().contains("math_answer"));
  const std::vector<std::string> names = registered_rewards();
  EXPECT_EQ(names, reward_registry().names());
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(RewardRegistry, UnknownNameIsTheRegistryMessage) {
  try {
    make_reward("math_anwser", nlohmann::json::object(), "recipe.json: rewards[0]");
    FAIL() << "an unknown reward was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    const std::string what = e.what();
    EXPECT_TRUE(
        what.starts_with("recipe.json: rewards[0]: unknown reward \"math_anwser\" (did "
                         "you mean \"math_answer\"?); known: code_exec, countdown, exact_match, "))
        << what;
    EXPECT_NE(what.find(", test_constant, test_deadline, test_scripted, think_format"),
              std::string::npos)
        << what;
  }
}

TEST(RewardRegistry, OptionlessRewardRejectsOptions) {
  EXPECT_THROW(make_reward("test_scripted", {{"x", 1}}, "r.json"), Error);
  EXPECT_NE(make_reward("test_scripted", nlohmann::json::object(), "r.json"), nullptr);
}

TEST(RewardSpec, ReadsFromJsonWithDefaults) {
  auto s =
      read_config<RewardSpec>(nlohmann::json{{"name", "math_answer"}, {"weight", 0.5}}, "r.json");
  EXPECT_EQ(s.name, "math_answer");
  EXPECT_DOUBLE_EQ(s.weight, 0.5);
  EXPECT_DOUBLE_EQ(s.fallback, 0.0);
  EXPECT_TRUE(s.options.is_object());
  EXPECT_EQ(s.max_consecutive_timeouts, 3);
  EXPECT_DOUBLE_EQ(s.max_failure_fraction, 1.0);
  auto tuned = read_config<RewardSpec>(
      nlohmann::json{
          {"name", "x"}, {"max_consecutive_timeouts", 0}, {"max_failure_fraction", 0.25}},
      "r.json");
  EXPECT_EQ(tuned.max_consecutive_timeouts, 0);
  EXPECT_DOUBLE_EQ(tuned.max_failure_fraction, 0.25);
  EXPECT_THROW(
      read_config<RewardSpec>(nlohmann::json{{"name", "x"}, {"max_failure_fraction", 0}}, "r.json"),
      Error);
  EXPECT_THROW(read_config<RewardSpec>(
                   nlohmann::json{{"name", "x"}, {"max_consecutive_timeouts", -1}}, "r.json"),
               Error);
  EXPECT_THROW(
      read_config<RewardSpec>(nlohmann::json{{"name", "x"}, {"timeout_seconds", 0}}, "r.json"),
      Error);
  EXPECT_THROW(read_config<RewardSpec>(nlohmann::json{{"weight", 1}}, "r.json"), Error);
}

}  // namespace
}  // namespace r1kit
