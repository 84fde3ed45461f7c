// The jsonl data-set environment on files written here, and the multi-turn
// calculator environment.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "environments/environment.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

TEST(Jsonl, ReadsGsm8kMathChatAndPromptLines) {
  const testing::TempFolder folder;
  std::string path = folder.write_file(
      "mixed.jsonl",
      R"({"question": "Natalia sold 48 clips...", "answer": "48/2 = 24\n48+24 = 72\n#### 72"})"
      "\n"
      R"({"problem": "Find x.", "solution": "So $x = \\boxed{\\frac{1}{2}}$."})"
      "\n"
      "\n"
      R"({"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello"}], "answer": "Hello"})"
      "\n"
      R"({"prompt": "2+2?", "answer": 4, "metadata": {"level": 1}})"
      "\n");
  auto env = make_environment("jsonl", {{"path", path}, {"shuffle_buffer", 1}}, "test");
  std::mt19937_64 rng(1);
  std::vector<Task> tasks = env->next_tasks(5, rng);
  EXPECT_EQ(tasks[0].reference, "72");
  EXPECT_EQ(tasks[0].metadata["line"], 1);
  EXPECT_EQ(tasks[1].reference, "\\frac{1}{2}");
  EXPECT_EQ(tasks[2].messages.size(), 1u);
  EXPECT_EQ(tasks[2].solution, "Hello");
  EXPECT_EQ(tasks[2].metadata["line"], 4);
  EXPECT_EQ(tasks[3].reference, "4");
  EXPECT_EQ(tasks[3].metadata["level"], 1);
  EXPECT_EQ(tasks[4].reference, "72");  // the second epoch starts over
}

TEST(Jsonl, BadLinesAreSkippedOrNamedWithFileAndLine) {
  const testing::TempFolder folder;
  std::string path = folder.write_file("bad.jsonl", R"({"question": "q1", "answer": "#### 1"})"
                                                    "\n"
                                                    "{not json\n"
                                                    R"({"question": "q3", "answer": "no hashes"})"
                                                    "\n"
                                                    R"({"question": "q4", "answer": "#### 4"})"
                                                    "\n");
  auto env = make_environment("jsonl", {{"path", path}, {"shuffle_buffer", 1}}, "test");
  std::mt19937_64 rng(1);
  std::vector<Task> tasks = env->next_tasks(2, rng);
  EXPECT_EQ(tasks[0].reference, "1");
  EXPECT_EQ(tasks[1].reference, "4");
  auto strict =
      make_environment("jsonl", {{"path", path}, {"strict", true}, {"shuffle_buffer", 1}}, "test");
  try {
    strict->next_tasks(2, rng);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: not valid JSON"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_environment("jsonl", {{"path", "/nonexistent.jsonl"}}, "test"), Error);
  std::string empty = folder.write_file("empty.jsonl", "garbage\n");
  EXPECT_THROW(make_environment("jsonl", {{"path", empty}}, "test")->next_tasks(1, rng), Error);
}

TEST(Jsonl, HeldOutFractionIsFixedAndDisjoint) {
  const testing::TempFolder folder;
  std::string text;
  for (int i = 1; i <= 200; ++i)
    text += R"({"prompt": "p)" + std::to_string(i) +
            R"(", "answer": "1"})"
            "\n";
  std::string path = folder.write_file("many.jsonl", text);
  auto env = make_environment("jsonl", {{"path", path}, {"eval_fraction", 0.2}}, "test");
  std::set<std::string> eval;
  for (const Task& t : env->eval_tasks()) eval.insert(t.prompt);
  EXPECT_GT(eval.size(), 20u);
  EXPECT_LT(eval.size(), 60u);
  std::mt19937_64 rng(2);
  std::vector<Task> train = env->next_tasks(150, rng);
  for (const Task& t : train) EXPECT_EQ(eval.count(t.prompt), 0u) << t.prompt;
  auto again = make_environment("jsonl", {{"path", path}, {"eval_fraction", 0.2}}, "test");
  EXPECT_EQ(again->eval_tasks().size(), eval.size());
}

TEST(Calculator, AnswersToolCallsAndMarksObservations) {
  auto calc = make_environment("calculator", {{"max_tool_calls", 2}}, "test");
  ASSERT_TRUE(calc->multi_turn());
  std::mt19937_64 rng(3);
  Task task = calc->next_tasks(1, rng)[0];
  EXPECT_NE(task.prompt.find("<tool>"), std::string::npos);

  std::vector<Turn> history;
  std::string turn1 = "<think>first the product</think><tool>1234 * 5678</tool>";
  StepResult r1 = calc->step(task, history, turn1);
  EXPECT_FALSE(r1.done);
  EXPECT_EQ(r1.observation, "<result>7006652</result>");
  history.push_back({turn1, false});
  history.push_back({r1.observation, true});

  StepResult bad = calc->step(task, history, "<tool>1/0</tool>");
  EXPECT_NE(bad.observation.find("<result>error: "), std::string::npos) << bad.observation;
  history.push_back({"<tool>1/0</tool>", false});
  history.push_back({bad.observation, true});

  // The call budget is spent: the episode ends.
  EXPECT_TRUE(calc->step(task, history, "<tool>1+1</tool>").done);
  EXPECT_TRUE(calc->step(task, {}, "<answer>42</answer>").done);

  RenderedTurns rendered = render_turns(history);
  ASSERT_EQ(rendered.observation_spans.size(), 2u);
  auto [begin, end] = rendered.observation_spans[0];
  EXPECT_EQ(rendered.text.substr(begin, end - begin), "<result>7006652</result>");
  EXPECT_EQ(begin, turn1.size());
}

}  // namespace
}  // namespace r1kit
