// exact_match, numeric_match, think_format and overlong on hand-written samples.
#include <gtest/gtest.h>

#include "common/error.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

double score(const std::string& name, const nlohmann::json& options, Sample sample) {
  return make_reward(name, options, "test")->score(sample).value.value_or(-999.0);
}

Sample with(std::string completion, std::string reference = "") {
  return Sample{.completion = std::move(completion), .reference = std::move(reference)};
}

TEST(ExactMatch, ComparesTheExtractedAnswer) {
  nlohmann::json none = nlohmann::json::object();
  EXPECT_EQ(score("exact_match", none, with("<answer>Paris</answer>", "Paris")), 1.0);
  EXPECT_EQ(score("exact_match", none, with("<answer>paris</answer>", "Paris")), 0.0);
  EXPECT_EQ(
      score("exact_match", {{"case_sensitive", false}}, with("<answer>paris</answer>", "Paris")),
      1.0);
  EXPECT_EQ(score("exact_match", {{"extract_answer", false}}, with("  Paris\n", "Paris")), 1.0);
  EXPECT_EQ(score("exact_match", none, with("no answer", "Paris")), 0.0);
  EXPECT_EQ(score("exact_match", none, with("<answer>x</answer>")),
            -999.0);  // no reference: not applicable
}

TEST(NumericMatch, ParsesNumbersWithSeparators) {
  nlohmann::json none = nlohmann::json::object();
  EXPECT_EQ(score("numeric_match", none, with("#### 1,234", "1234")), 1.0);
  EXPECT_EQ(score("numeric_match", none, with("The answer is $18.", "18")), 1.0);
  EXPECT_EQ(score("numeric_match", none, with("#### 17", "18")), 0.0);
  EXPECT_EQ(score("numeric_match", {{"relative_tolerance", 0.1}}, with("#### 17", "18")), 1.0);
  EXPECT_EQ(score("numeric_match", none, with("#### seventeen", "17")), 0.0);
  EXPECT_THROW(score("numeric_match", none, with("#### 3", "three")), Error);
}

TEST(ThinkFormat, AcceptsTheR1TemplateOnly) {
  nlohmann::json none = nlohmann::json::object();
  EXPECT_EQ(score("think_format", none, with("<think>2+2=4</think> <answer>4</answer>")), 1.0);
  EXPECT_EQ(score("think_format", none, with(" <think>\nreason\n</think>\n<answer>4</answer>\n")),
            1.0);
  EXPECT_EQ(score("think_format", none, with("<think>a</think><answer>4</answer> extra")), 0.0);
  EXPECT_EQ(
      score("think_format", none, with("<think>a</think><answer>4</answer><answer>5</answer>")),
      0.0);
  EXPECT_EQ(score("think_format", none, with("<think>a</think><think>b</think><answer>4</answer>")),
            0.0);
  EXPECT_EQ(score("think_format", none, with("<answer>4</answer>")), 0.0);
  EXPECT_EQ(score("think_format", none, with("<think></think><answer>4</answer>")), 0.0);
  EXPECT_EQ(score("think_format", none, with("<think>a</think><answer> </answer>")), 0.0);
  EXPECT_EQ(score("think_format", none, with("hi <think>a</think><answer>4</answer>")), 0.0);
  EXPECT_EQ(score("think_format", {{"think_in_prompt", true}}, with("a</think><answer>4</answer>")),
            1.0);
  EXPECT_EQ(score("think_format", {{"think_in_prompt", true}},
                  with("<think>a</think><answer>4</answer>")),
            0.0);
  EXPECT_EQ(score("think_format", {{"require_answer_tag", false}}, with("<think>a</think> 4")),
            1.0);
}

TEST(Overlong, DapoSoftPenalty) {
  nlohmann::json options = {{"max_completion_length", 100}, {"len", 20}, {"penalty_factor", 0.5}};
  auto at = [&](int64_t length) {
    Sample s;
    s.completion = "x";
    s.completion_ids.assign(static_cast<size_t>(length), 7);
    return score("overlong", options, s);
  };
  EXPECT_DOUBLE_EQ(at(10), 0.0);
  EXPECT_DOUBLE_EQ(at(80), 0.0);
  EXPECT_DOUBLE_EQ(at(90), -0.25);
  EXPECT_DOUBLE_EQ(at(100), -0.5);
  EXPECT_DOUBLE_EQ(at(130), -0.5);
  Sample from_metadata = with("text");
  from_metadata.metadata = {{"completion_length", 95}};
  EXPECT_DOUBLE_EQ(score("overlong", options, from_metadata), -0.375);
  EXPECT_THROW(score("overlong", options, with("text")), Error);
  EXPECT_THROW(make_reward("overlong", {{"max_completion_length", 10}, {"len", 20}}, "r.json"),
               Error);
  EXPECT_THROW(make_reward("overlong", {{"len", 20}}, "r.json"), Error);
}

TEST(CountdownReward, ChecksTheAnswerExpression) {
  nlohmann::json none = nlohmann::json::object();
  Sample s = with("<think>25-1=24</think><answer>(25 - 1) * 1</answer>");
  s.metadata = {{"numbers", {25, 1, 1}}, {"target", 24}};
  EXPECT_EQ(score("countdown", none, s), 1.0);
  s.completion = "<answer>25 - 1 - 1 + 1</answer>";
  EXPECT_EQ(score("countdown", none, s), 0.0);  // 1 used three times
  s.completion = "no tags";
  EXPECT_EQ(score("countdown", none, s), 0.0);
  EXPECT_EQ(score("countdown", none, with("<answer>1</answer>")), -999.0);  // not a countdown task
}

}  // namespace
}  // namespace r1kit
