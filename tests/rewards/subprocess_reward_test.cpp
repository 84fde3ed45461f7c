// The subprocess reward with a /bin/sh child that crashes, hangs, prints
// garbage or answers on cue (the request line names what to do).
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/thread_pool.h"
#include "rewards/reward.h"
#include "rewards/reward_set.h"

namespace r1kit {
namespace {

const char* kScript = R"(
while IFS= read -r line; do
  case "$line" in
    *crash*) exit 3 ;;
    *hang*) exec sleep 30 ;;
    *garbage*) echo "this is not json" ;;
    *half*) printf '{"reward": 0.5, "components": {"len": 4}, "info": "ok"}\n' ;;
    *skipme*) echo '{"reward": null}' ;;
    *) echo '{"reward": 1}' ;;
  esac
done
)";

RewardSpec subprocess_spec(double timeout_seconds, int64_t processes) {
  RewardSpec spec;
  spec.name = "subprocess";
  spec.options = {{"command", {"/bin/sh", "-c", kScript}}, {"num_processes", processes}};
  spec.timeout_seconds = timeout_seconds;
  spec.fallback = -1.0;
  return spec;
}

std::vector<Sample> samples_of(const std::vector<std::string>& completions) {
  std::vector<Sample> out;
  for (const auto& c : completions)
    out.push_back(Sample{.completion = c, .reference = "r", .metadata = {{"k", 1}}});
  return out;
}

TEST(SubprocessReward, ScoresOverJsonLines) {
  auto reward = make_reward("subprocess", subprocess_spec(5, 1).options, "test");
  RewardResult half = reward->score(Sample{.completion = "half"});
  EXPECT_EQ(half.value, 0.5);
  EXPECT_EQ(half.components.at("len"), 4.0);
  EXPECT_EQ(half.info, "ok");
  EXPECT_EQ(reward->score(Sample{.completion = "fine"}).value, 1.0);
  EXPECT_FALSE(reward->score(Sample{.completion = "skipme"}).value.has_value());
}

TEST(SubprocessReward, CrashHangAndGarbageAreCountedAndTheRunGoesOn) {
  ThreadPool pool(2);
  RewardSet set({subprocess_spec(0.5, 2)}, "test");
  std::vector<std::string> completions = {"ok",      "half", "crash",  "ok", "hang",
                                          "garbage", "ok",   "skipme", "ok"};
  BatchScores scores = set.score(samples_of(completions), pool);
  ASSERT_EQ(scores.totals.size(), completions.size());
  EXPECT_EQ(scores.errors[0], 2);    // crash, garbage
  EXPECT_EQ(scores.timeouts[0], 1);  // hang
  std::vector<double> expected = {1, 0.5, -1, 1, -1, -1, 1, 0, 1};
  for (size_t i = 0; i < completions.size(); ++i)
    EXPECT_DOUBLE_EQ(scores.totals[i], expected[i]) << completions[i];
  EXPECT_EQ(scores.outcomes[4][0], RewardOutcome::kTimeout);
  EXPECT_EQ(scores.outcomes[7][0], RewardOutcome::kNotApplicable);
  // The processes were restarted: a second batch scores cleanly.
  BatchScores again = set.score(samples_of({"ok", "half", "ok"}), pool);
  EXPECT_EQ(again.errors[0], 0);
  EXPECT_EQ(again.timeouts[0], 0);
  EXPECT_DOUBLE_EQ(again.totals[1], 0.5);
}

TEST(SubprocessReward, CrashReportsTheExitStatus) {
  auto reward = make_reward("subprocess", subprocess_spec(5, 1).options, "test");
  try {
    reward->score(Sample{.completion = "crash"});
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("exited with status 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(reward->score(Sample{.completion = "ok"}).value, 1.0);
}

TEST(SubprocessReward, MissingProgramFailsAtStartUp) {
  try {
    make_reward("subprocess", {{"command", {"/nonexistent/reward-server"}}},
                "recipe.json: rewards[1].options");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recipe.json: rewards[1].options"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot start"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_reward("subprocess", {{"command", nlohmann::json::array()}}, "r.json"), Error);
}

}  // namespace
}  // namespace r1kit
