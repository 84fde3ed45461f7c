// The subprocess reward with a /bin/sh child that crashes, hangs, prints
// garbage or answers on cue (the request line names what to do); replies that
// lose step with the requests, the child's stderr in errors, and commands
// that name files next to the recipe.
#include <gtest/gtest.h>

#include <chrono>

#include "common/error.h"
#include "common/thread_pool.h"
#include "rewards/reward.h"
#include "rewards/reward_set.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

// Reads each request into $line and its "id" into $id (empty when it has none).
const std::string kReadLoop = R"(while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
)";

const std::string kScript = kReadLoop + R"(
  case "$line" in
    *crash*) exit 3 ;;
    *hang*) exec sleep 30 ;;
    *garbage*) echo "this is not json" ;;
    *half*) printf '{"id": %s, "reward": 0.5, "components": {"len": 4}, "info": "ok"}\n' "$id" ;;
    *skipme*) printf '{"id": %s, "reward": null}\n' "$id" ;;
    *) printf '{"id": %s, "reward": 1}\n' "$id" ;;
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

// Replies to each request with its completion as a number, then writes a
// second line: a program out of step with the protocol. Without ids, every
// later reply would land on the next sample and be taken as its score. The
// id is echoed only when the request carries one.
const std::string kTwoLinesScript = kReadLoop + R"sh(
  n=$(printf '%s' "$line" | sed -n 's/.*"completion":"\([0-9]*\)".*/\1/p')
  if [ -n "$id" ]; then
    printf '{"id": %s, "reward": %s}\n{"id": %s, "reward": 999}\n' "$id" "$n" "$id"
  else
    printf '{"reward": %s}\n{"reward": 999}\n' "$n"
  fi
done
)sh";

TEST(SubprocessReward, ExtraLinesAreErrorsNeverAnotherSamplesScore) {
  ThreadPool pool(1);
  RewardSpec spec = subprocess_spec(5, 1);
  spec.options["command"] = {"/bin/sh", "-c", kTwoLinesScript};
  RewardSet set({spec}, "test");
  std::vector<std::string> completions;
  for (int i = 0; i < 8; ++i) completions.push_back(std::to_string(i));
  BatchScores scores = set.score(samples_of(completions), pool);
  EXPECT_GT(scores.errors[0], 0);
  for (size_t i = 0; i < completions.size(); ++i) {
    if (scores.outcomes[i][0] == RewardOutcome::kOk) {
      EXPECT_DOUBLE_EQ(*scores.values[i][0], static_cast<double>(i)) << "sample " << i;
    } else {
      EXPECT_EQ(scores.outcomes[i][0], RewardOutcome::kError) << "sample " << i;
      EXPECT_DOUBLE_EQ(*scores.values[i][0], -1.0) << "sample " << i;
    }
  }
}

// The error of a reply of `script`'s to one request.
std::string reply_error(const std::string& script) {
  auto reward = make_reward("subprocess", {{"command", {"/bin/sh", "-c", script}}}, "test");
  try {
    reward->score(Sample{.completion = "x"});
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "the reply was accepted";
  return "";
}

TEST(SubprocessReward, ReplyMustEchoTheRequestsId) {
  std::string missing = reply_error("while read -r line; do echo '{\"reward\": 1}'; done");
  EXPECT_NE(missing.find("the reply must echo the request's \"id\""), std::string::npos) << missing;
  EXPECT_NE(missing.find("restarted"), std::string::npos) << missing;
  std::string wrong =
      reply_error("while read -r line; do echo '{\"id\": 12345, \"reward\": 1}'; done");
  EXPECT_NE(wrong.find("\"id\" 12345 is not the request's 0"), std::string::npos) << wrong;
}

TEST(SubprocessReward, CrashQuotesTheEndOfItsStderr) {
  auto reward =
      make_reward("subprocess",
                  {{"command",
                    {"/bin/sh", "-c",
                     "read -r line; echo 'loading model' >&2; echo 'bad config' >&2; exit 2"}}},
                  "test");
  try {
    reward->score(Sample{.completion = "x"});
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("exited with status 2 without replying"), std::string::npos) << what;
    EXPECT_TRUE(what.ends_with("; its stderr ends: loading model | bad config")) << what;
  }
}

TEST(SubprocessReward, MissingScriptFailsWithThePythonError) {
  auto reward = make_reward("subprocess",
                            {{"command", {"python3", "/nonexistent/folder/missing.py"}}}, "test");
  try {
    reward->score(Sample{.completion = "x"});
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("can't open file"), std::string::npos) << what;
    EXPECT_NE(what.find("/nonexistent/folder/missing.py"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
  }
}

// A recipe that names its script by a path relative to its own folder runs
// from any working directory (the tests run in the build folder).
TEST(SubprocessReward, RelativePathsResolveFromTheRecipesFolder) {
  const testing::TempFolder folder;
  std::string recipe = folder.write_file("recipe.json", "{}").string();
  folder.write_file("scripts/reward.sh",
                    kReadLoop + "printf '{\"id\": %s, \"reward\": 0.25}\\n' \"$id\"\ndone\n");
  RewardSpec spec = subprocess_spec(5, 1);
  spec.options["command"] = {"/bin/sh", "scripts/reward.sh"};
  RewardSet set({spec}, recipe);
  ThreadPool pool(1);
  BatchScores scores = set.score(samples_of({"a", "b"}), pool);
  EXPECT_EQ(scores.errors[0], 0) << scores.info[0][0].dump();
  EXPECT_DOUBLE_EQ(scores.totals[0], 0.25);
  EXPECT_DOUBLE_EQ(scores.totals[1], 0.25);
}

// A program that hangs costs its timeout max_consecutive_timeouts times, then
// the rest of the batch gets the fallback at once.
TEST(SubprocessReward, HangingProgramIsSkippedAfterTimeoutsInARow) {
  ThreadPool pool(1);
  RewardSet set({subprocess_spec(0.2, 1)}, "test");
  auto start = std::chrono::steady_clock::now();
  BatchScores scores = set.score(samples_of(std::vector<std::string>(12, "hang")), pool);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(scores.timeouts[0], 3);
  EXPECT_EQ(scores.skipped[0], 9);
  EXPECT_LT(seconds, 1.5);  // 12 timeouts of 0.2 s would take 2.4 s
  EXPECT_EQ(scores.outcomes[11][0], RewardOutcome::kSkipped);
  for (double total : scores.totals) EXPECT_DOUBLE_EQ(total, -1.0);
}

}  // namespace
}  // namespace r1kit
