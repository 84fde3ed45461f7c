// The code_exec reward's scores on correct, partly correct and wrong programs:
// stdin/stdout tests (APPS and CodeContests layouts), assert tests (MBPP's
// list, HumanEval's check()), C and C++, code extraction, output comparison,
// options, deadlines and concurrent scoring.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "common/thread_pool.h"
#include "environments/environment.h"
#include "rewards/reward.h"
#include "rewards/reward_set.h"
#include "rewards/sandbox.h"

namespace r1kit {
namespace {

const char* kAddProgram =
    "```python\n"
    "a, b = map(int, input().split())\n"
    "print(a + b)\n"
    "```";

// Three sums, the third with a wrong expected answer: at most 2 of 3 pass.
const nlohmann::json kSumTests = {{{"input", "1 2\n"}, {"output", "3\n"}},
                                  {{"input", "20 22"}, {"output", "42"}},
                                  {{"input", "2 2\n"}, {"output", "5\n"}}};

class CodeExecReward : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = Sandbox::unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << "no sandbox on this machine: " << why;
  }

  static RewardResult score(const std::string& completion, const nlohmann::json& tests,
                            nlohmann::json options = nlohmann::json::object(),
                            nlohmann::json metadata = nlohmann::json::object()) {
    options.emplace("timeout_seconds", 2.0);
    metadata["tests"] = tests;
    auto reward = make_reward("code_exec", options, "test");
    return reward->score(Sample{.completion = completion, .metadata = metadata});
  }
};

TEST_F(CodeExecReward, StdinStdoutTestsGivePartialCredit) {
  RewardResult result = score(kAddProgram, kSumTests);
  EXPECT_DOUBLE_EQ(*result.value, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(result.components.at("pass_rate"), 2.0 / 3.0);
  EXPECT_EQ(result.components.at("has_code"), 1.0);
  EXPECT_EQ(result.info["passed"], 2);
  EXPECT_EQ(result.info["failure"]["test"], 2);
  EXPECT_EQ(result.info["failure"]["why"], "wrong output");

  nlohmann::json right = kSumTests;
  right[2]["output"] = "4";
  EXPECT_EQ(score(kAddProgram, right).value, 1.0);
}

TEST_F(CodeExecReward, AllOrNothingStopsAtTheFirstFailure) {
  nlohmann::json tests = {{{"input", "1 1"}, {"output", "3"}}, {{"input", "1 2"}, {"output", "3"}}};
  RewardResult result = score(kAddProgram, tests, {{"partial_credit", false}});
  EXPECT_EQ(result.value, 0.0);
  EXPECT_EQ(result.info["passed"], 0);  // the second test never ran
  EXPECT_EQ(score(kAddProgram, {tests[1]}, {{"partial_credit", false}}).value, 1.0);
}

TEST_F(CodeExecReward, AppsLayoutFromTheReference) {
  // APPS keeps input_output as a JSON string; the reference carries it here.
  auto reward = make_reward("code_exec", {{"timeout_seconds", 2.0}}, "test");
  Sample sample{.completion = kAddProgram,
                .reference = R"({"inputs": ["5 6\n", "0 0\n"], "outputs": ["11\n", "1\n"]})"};
  EXPECT_EQ(reward->score(sample).value, 0.5);
}

TEST_F(CodeExecReward, RuntimeErrorsAndCrashesFail) {
  nlohmann::json tests = {{{"input", ""}, {"output", "1"}}};
  RewardResult raised = score("```python\nraise ValueError('no')\n```", tests);
  EXPECT_EQ(raised.value, 0.0);
  EXPECT_EQ(raised.info["failure"]["why"], "exit status 1");
  EXPECT_NE(raised.info["failure"]["stderr"].get<std::string>().find("ValueError"),
            std::string::npos);
  RewardResult crashed =
      score("```python\nimport os\nprint(1, flush=True)\nos.abort()\n```", tests);
  EXPECT_EQ(crashed.value, 0.0);
  EXPECT_EQ(crashed.info["failure"]["why"].get<std::string>().rfind("signal 6", 0), 0u);
}

TEST_F(CodeExecReward, MbppAssertListScoresEachAssert) {
  nlohmann::json tests = {"assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(1, 1) == 3",
                          "assert add(0, 0) == 0"};
  std::string program = "```python\ndef add(a, b):\n    return a + b\n```";
  EXPECT_EQ(score(program, tests).value, 0.75);
  EXPECT_EQ(score("```python\ndef add(a, b):\n    return a - b\n```", tests).value, 0.25);
}

TEST_F(CodeExecReward, HumanEvalCheckIsCalledOnTheEntryPoint) {
  std::string check =
      "def check(candidate):\n"
      "    assert candidate([1, 2, 3]) == 6\n"
      "    assert candidate([]) == 0\n";
  nlohmann::json metadata = {{"entry_point", "total"}};
  EXPECT_EQ(score("```python\ndef total(xs):\n    return sum(xs)\n```", check, {}, metadata).value,
            1.0);
  EXPECT_EQ(score("```python\ndef total(xs):\n    return len(xs)\n```", check, {}, metadata).value,
            0.0);
}

TEST_F(CodeExecReward, TheLastPythonBlockAfterThinkingIsRun) {
  nlohmann::json tests = {{{"input", ""}, {"output", "right"}}};
  std::string completion =
      "<think>First try:\n```python\nprint('wrong')\n```\n</think>\n"
      "Here is my answer.\n```py\nprint('early')\n```\nFinal:\n```python\nprint('right')\n```\n"
      "And a shell line:\n```bash\necho wrong\n```";
  EXPECT_EQ(score(completion, tests).value, 1.0);

  // Only the reasoning has code: nothing counts after </think>.
  RewardResult thought_only = score("<think>```python\nprint('right')\n```</think>done", tests);
  EXPECT_EQ(thought_only.value, 0.0);
  EXPECT_EQ(thought_only.components.at("has_code"), 0.0);
  EXPECT_EQ(
      score("<think>```python\nprint('right')\n```</think>done", tests, {{"after_think", false}})
          .value,
      1.0);

  EXPECT_EQ(score("```python\nprint('right')\n", tests).value, 0.0);  // unclosed
  EXPECT_EQ(score("```\nprint('right')\n```", tests).value, 0.0);     // unlabelled
  EXPECT_EQ(score("```\nprint('right')\n```", tests, {{"plain_fence", true}}).value, 1.0);
}

TEST_F(CodeExecReward, OutputComparisonModes) {
  std::string program = "```python\nprint('1  2 ')\nprint()\n```";
  nlohmann::json tests = {{{"input", ""}, {"output", "1  2\n"}}};
  EXPECT_EQ(score(program, tests).value, 1.0);  // lines: trailing spaces and blank lines
  EXPECT_EQ(score(program, tests, {{"compare", "exact"}}).value, 0.0);
  nlohmann::json spaced = {{{"input", ""}, {"output", "1\n2"}}};
  EXPECT_EQ(score(program, spaced).value, 0.0);
  EXPECT_EQ(score(program, spaced, {{"compare", "tokens"}}).value, 1.0);
}

TEST_F(CodeExecReward, CAndCppAreCompiledOnceAndRun) {
  nlohmann::json tests = {{{"input", "2 3"}, {"output", "5"}}, {{"input", "4 4"}, {"output", "9"}}};
  std::string cpp =
      "```cpp\n#include <iostream>\n"
      "int main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n```";
  EXPECT_EQ(score(cpp, tests, {{"language", "cpp"}}).value, 0.5);
  std::string c =
      "```c\n#include <stdio.h>\n#include <math.h>\n"
      "int main(void) { int a, b; scanf(\"%d %d\", &a, &b); printf(\"%d\\n\", (int)sqrt(a * a) + "
      "b); }\n```";
  // The task's metadata names the language.
  EXPECT_EQ(score(c, tests, {}, {{"language", "c"}}).value, 0.5);

  RewardResult broken = score("```cpp\nint main( {\n```", tests, {{"language", "cpp"}});
  EXPECT_EQ(broken.value, 0.0);
  EXPECT_NE(broken.info["failure"].get<std::string>().find("compilation failed"),
            std::string::npos);
}

TEST_F(CodeExecReward, TasksWithoutTestsAreNotApplicable) {
  auto reward = make_reward("code_exec", {}, "test");
  EXPECT_FALSE(reward->score(Sample{.completion = kAddProgram}).value.has_value());
  EXPECT_THROW(reward->score(Sample{.completion = kAddProgram, .metadata = {{"tests", 3}}}), Error);
  EXPECT_THROW(reward->score(Sample{.completion = kAddProgram,
                                    .metadata = {{"tests", kSumTests}, {"language", "rust"}}}),
               Error);
}

TEST_F(CodeExecReward, OptionErrorsNameTheKey) {
  auto message_of = [](const nlohmann::json& options) {
    try {
      make_reward("code_exec", options, "recipe.json: rewards[0].options");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of({{"language", "rust"}}).find("language"), std::string::npos);
  EXPECT_NE(message_of({{"timeout_seconds", 0}}).find("timeout_seconds"), std::string::npos);
  EXPECT_NE(message_of({{"python", "/no/such/python"}}).find("python"), std::string::npos);
  EXPECT_NE(message_of({{"read_only_paths", {"/tmp/x"}}}).find("read_only_paths"),
            std::string::npos);
  EXPECT_NE(message_of({{"max_tests", -1}}).find("max_tests"), std::string::npos);
  EXPECT_NE(message_of({{"memory_limit", 5}}).find("memory_limit"), std::string::npos);
}

TEST_F(CodeExecReward, TheDeadlineStopsTheTests) {
  auto reward = make_reward("code_exec", {{"timeout_seconds", 30.0}}, "test");
  Sample sample{.completion = "```python\nwhile True: pass\n```",
                .metadata = {{"tests", kSumTests}}};
  auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(reward->score_until(sample, started + std::chrono::milliseconds(500)),
               RewardTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST_F(CodeExecReward, ConcurrentScoringThroughARewardSet) {
  RewardSpec spec;
  spec.name = "code_exec";
  spec.options = {{"timeout_seconds", 2.0}};
  RewardSet set({spec}, "test");
  std::vector<Sample> samples;
  const char* programs[] = {kAddProgram, "```python\nprint(3)\n```", "no code here",
                            "```python\nimport sys\nsys.exit(2)\n```"};
  const double expected[] = {2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0};
  for (int i = 0; i < 12; ++i)
    samples.push_back(Sample{.completion = programs[i % 4], .metadata = {{"tests", kSumTests}}});
  ThreadPool pool(2);
  BatchScores scores = set.score(samples, pool);
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(scores.outcomes[i][0], RewardOutcome::kOk) << i << ": " << scores.info[i][0];
    EXPECT_DOUBLE_EQ(scores.totals[i], expected[i % 4]) << i;
  }
}

// The example data file, read by the jsonl environment, hands its tests to
// the reward through the task's metadata.
TEST_F(CodeExecReward, ExampleTasksThroughTheJsonlEnvironment) {
  auto environment =
      make_environment("jsonl",
                       {{"path", std::string(R1KIT_SOURCE_DIR) + "/examples/code_exec/tasks.jsonl"},
                        {"shuffle_buffer", 1},
                        {"strict", true}},
                       "test");
  std::mt19937_64 rng(0);
  std::vector<Task> tasks = environment->next_tasks(4, rng);
  ASSERT_EQ(tasks.size(), 4u);
  const char* solutions[] = {
      kAddProgram, "```python\ndef is_palindrome(s):\n    return s == s[::-1]\n```",
      "```python\ndef count_vowels(text):\n    return sum(c in 'aeiouAEIOU' for c in text)\n```",
      "```cpp\n#include <iostream>\nint main() { int n, x, best = -2000000000; std::cin >> n;\n"
      "  while (n--) { std::cin >> x; if (x > best) best = x; }\n  std::cout << best << '\\n'; "
      "}\n```"};
  auto reward = make_reward("code_exec", {{"timeout_seconds", 2.0}}, "test");
  for (size_t i = 0; i < tasks.size(); ++i) {
    RewardResult result = reward->score(Sample{.completion = solutions[i],
                                               .reference = tasks[i].reference,
                                               .metadata = tasks[i].metadata});
    EXPECT_EQ(result.value, 1.0) << i << ": " << result.info;
  }
}

}  // namespace
}  // namespace r1kit
