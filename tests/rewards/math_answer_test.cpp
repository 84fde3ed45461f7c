// The math_answer table: (prediction, reference, expected) cases written by
// hand from Math-Verify's documented behaviour and the MATH/GSM8K answer
// styles, hacking attempts included. No tools/ script: the values are the spec.
#include <gtest/gtest.h>

#include "common/error.h"
#include "rewards/answer_extraction.h"
#include "rewards/math_equivalence.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

struct Case {
  const char* prediction;
  const char* reference;
  bool expected;
};

// clang-format off
const Case kCases[] = {
  // integers, decimals, signs
  {"42", "42", true}, {"42", "43", false}, {"-7", "-7", true}, {"-7", "7", false}, {"+7", "7", true},
  {"007", "7", true}, {"7.0", "7", true}, {"7.00", "7", true}, {"7.", "7", true}, {"7", "7.0", true},
  {"7.5", "7.50", true}, {"0.5", "\\frac{1}{2}", true}, {".5", "0.5", true}, {"1000001", "1000000", false},
  {"4.9999999", "5", true}, {"4.99", "5", false}, {"5.0000001", "5", true}, {"5.001", "5", false},
  {"1e5", "100000", false}, {"-0", "0", true}, {"0.0", "0", true}, {"0.00001", "0", false},
  // fractions as exact rationals
  {"\\frac{1}{2}", "\\frac{1}{2}", true}, {"\\frac12", "\\frac{1}{2}", true}, {"\\dfrac{1}{2}", "\\frac{1}{2}", true},
  {"\\tfrac{3}{4}", "0.75", true}, {"1/2", "\\frac{1}{2}", true}, {"2/4", "\\frac{1}{2}", true},
  {"\\frac{2}{4}", "\\frac12", true}, {"\\frac{1}{3}", "\\frac{2}{6}", true}, {"\\frac{1}{3}", "0.333", true},
  {"0.333", "\\frac{1}{3}", false}, {"0.3333333", "\\frac{1}{3}", true}, {"\\frac{1}{3}", "0.33", true},
  {"0.33", "0.333", false}, {"\\frac{-1}{2}", "-\\frac{1}{2}", true}, {"-\\frac{1}{2}", "\\frac{1}{-2}", true},
  {"\\frac{1}{2}", "\\frac{1}{3}", false}, {"\\frac{7}{2}", "3\\frac{1}{2}", true}, {"3.5", "3\\frac12", true},
  {"\\frac{1}{0}", "1", false}, {"\\frac{a}{b}", "\\frac{a}{b}", true}, {"\\frac{x+1}{2}", "\\frac{1+x}{2}", true},
  // LaTeX noise
  {"\\left( 3 \\right)", "3", true}, {"$5$", "5", true}, {"\\(5\\)", "5", true}, {"\\displaystyle 5", "5", true},
  {"5\\,000", "5000", false}, {"\\!5", "5", true}, {"\\boxed{5}", "5", true}, {"5", "\\boxed{5}", true},
  {"{5}", "5", true}, {"5 ", " 5", true}, {"\\text{5}", "5", true}, {"\\mathrm{5}", "5", true},
  // units, degrees, money, percentages
  {"5 \\text{ cm}", "5", true}, {"5\\text{cm}", "5", true}, {"5 cm", "5", true}, {"12 square feet", "12", true},
  {"30^\\circ", "30", true}, {"30^{\\circ}", "30", true}, {"30\xc2\xb0", "30", true}, {"30 degrees", "30", true},
  {"\\$18", "18", true}, {"$18.00", "18", true}, {"18 dollars", "18", true}, {"50\\%", "50", true},
  {"50%", "50", true}, {"50", "50\\%", true}, {"5 \\text{apples}", "5", false}, {"5 cm^2", "5", true},
  {"7 \\text{ hours}", "7", true}, {"3 \\mbox{ units}", "3", true},
  // thousands separators
  {"1,000", "1000", true}, {"1{,}000", "1000", true}, {"1,234,567", "1234567", true}, {"12,345.5", "12345.5", true},
  {"1,00", "100", false}, {"-1,000", "-1000", true}, {"1,000", "1", false},
  // roots, powers, pi
  {"\\sqrt{4}", "2", true}, {"\\sqrt4", "2", true}, {"\\sqrt{2}", "\\sqrt{2}", true}, {"\\sqrt{8}", "2\\sqrt{2}", true},
  {"2\\sqrt2", "\\sqrt{8}", true}, {"\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", true}, {"\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt2}{2}", true},
  {"1.414", "\\sqrt{2}", false}, {"1.41421356", "\\sqrt{2}", true}, {"\\sqrt[3]{27}", "3", true}, {"\\sqrt[3]{-8}", "-2", true},
  {"2^{10}", "1024", true}, {"2^10", "1024", true}, {"2**10", "1024", true}, {"10^{-2}", "0.01", true},
  {"3^{1}", "3", true}, {"\\pi", "\\pi", true}, {"2\\pi", "2 \\pi", true}, {"\\pi r^2", "\\pi r^{2}", true},
  {"3.14", "\\pi", false}, {"3.14159265", "\\pi", true}, {"\\pi", "3.14", true}, {"\\frac{\\pi}{2}", "\\frac12\\pi", true},
  {"6 \\cdot 7", "42", true}, {"6\\times7", "42", true}, {"84 \\div 2", "42", true}, {"sqrt(16)", "4", true},
  {"\\sqrt{-1}", "1", false}, {"9^{9^{9}}", "1", false},
  // algebraic expressions: same variables, same values
  {"2x+3", "3+2x", true}, {"x^2-1", "(x-1)(x+1)", true}, {"x^2+1", "x^2-1", false}, {"2x", "2y", false},
  {"\\frac{x}{2}", "0.5x", true}, {"a+b", "b+a", true}, {"3x", "3", false}, {"\\alpha+1", "1+\\alpha", true},
  {"y = 2x + 3", "2x+3", true}, {"2x+3", "y = 2x+3", true}, {"x = 5", "5", true}, {"5", "x=5", true},
  {"x^{2}", "x^2", true}, {"n(n+1)/2", "\\frac{n^2+n}{2}", true},
  // tuples, intervals, sets, lists
  {"(1, 2)", "(1,2)", true}, {"(2, 1)", "(1,2)", false}, {"1, 2", "(1,2)", true}, {"(1,2,3)", "(1,2,3)", true},
  {"[1, 2]", "[1,2]", true}, {"(1, 2]", "(1,2]", true}, {"[1, 2)", "(1,2]", false}, {"[1, 2]", "(1,2)", false},
  {"(-\\infty, 3)", "(-\\infty,3)", true}, {"(-\\infty, 3]", "(-\\infty,3)", false}, {"x \\in [0, 1]", "[0,1]", true},
  {"(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,\\infty)", true},
  {"(-\\infty, 0) \\cup (2, \\infty)", "(-\\infty,0)\\cup(1,\\infty)", false},
  {"\\{1, 2\\}", "\\{1,2\\}", true}, {"\\{2, 1\\}", "\\{1,2\\}", true}, {"2, 1", "\\{1,2\\}", true},
  {"1, 2", "2, 1", true}, {"1, 2, 2", "1, 2", false}, {"\\{1,2,3\\}", "\\{1,2\\}", false},
  {"\\left( \\frac{1}{2}, 3 \\right)", "(0.5, 3)", true}, {"(\\sqrt{2}, \\pi)", "(\\sqrt2,\\pi)", true},
  // text answers fall back to normalised text
  {"\\text{(A)}", "\\text{(A)}", true}, {"(B)", "(A)", false}, {"\\text{yes}", "yes", true},
  {"\\text{Monday}", "\\text{Tuesday}", false},
  // hacking attempts: several candidates, hedges, empty or evasive answers
  {"3, 4", "3", false}, {"3 or 4", "3", false}, {"3 \\text{ or } 4", "3", false}, {"3 \\text{or} 4", "12", false},
  {"3 4", "34", false}, {"3 4", "12", false}, {"\\{3, 4\\}", "3", false}, {"(3, 4)", "3", false},
  {"x = 3, x = 4", "3", false}, {"x = 3 \\text{ or } x = 4", "3", false}, {"3 \\pm 1", "3", false},
  {"\\approx 3", "3", false}, {"3 \\ldots", "3", false}, {"3 = 4", "3", false}, {"x = 3 = 4", "4", false},
  {"", "3", false}, {"\\text{}", "3", false}, {" ", "3", false}, {"3 + 0 \\cdot \\infty", "3", false},
  {"3 + 0x", "3", false}, {"\\infty", "3", false}, {"3x/x", "3", false}, {"3, 3", "3", false},
  {"[3]", "3", false}, {"\\frac{3}{1} or 4", "3", false}, {"3 \\neq 4", "3", false}, {"3!", "6", false},
  {"3.0000000001 or 3", "3", false}, {"answer", "3", false}, {"3\\%4", "3", false},
  {"1,2,3,4,5,6,7,8,9,10", "7", false}, {"\\{1,2,3,4,5,6,7,8,9,10\\}", "\\{7\\}", false},
};
// clang-format on

TEST(MathAnswer, TableOfCases) {
  const size_t count = sizeof(kCases) / sizeof(kCases[0]);
  EXPECT_GE(count, 150u);
  int failures = 0;
  for (const Case& c : kCases) {
    bool got = math_answers_equal(c.prediction, c.reference);
    if (got != c.expected) {
      ++failures;
      ADD_FAILURE() << "prediction \"" << c.prediction << "\" vs reference \"" << c.reference
                    << "\": expected " << c.expected << ", got " << got << " (normalised \""
                    << normalize_math_answer(c.prediction) << "\" / \""
                    << normalize_math_answer(c.reference) << "\")";
    }
  }
  EXPECT_EQ(failures, 0) << "of " << count << " cases";
}

TEST(MathAnswer, TooLongAnswerIsWrong) {
  std::string long_answer = "3";
  for (int i = 0; i < 300; ++i) long_answer += "+0";
  EXPECT_FALSE(math_answers_equal(long_answer, "3"));
  EXPECT_TRUE(math_answers_equal(long_answer, "3", {.tolerance = 1e-6, .max_answer_chars = 1000}));
}

TEST(AnswerExtraction, LastWellFormedBoxedWins) {
  EXPECT_EQ(last_boxed("so \\boxed{3} then \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(last_boxed("\\boxed{\\{1, 2\\}}"), "\\{1, 2\\}");
  EXPECT_EQ(last_boxed("\\boxed{3} and \\boxed{4"), "3");
  EXPECT_EQ(last_boxed("\\fbox{7}"), "7");
  EXPECT_EQ(last_boxed("the answer is \\boxed 5$"), "5");
  EXPECT_EQ(last_boxed("no box"), std::nullopt);
  EXPECT_EQ(last_boxed("\\boxedx{3}"), std::nullopt);
}

TEST(AnswerExtraction, FormsInPriority) {
  auto get = [](std::string_view text) {
    std::optional<ExtractedAnswer> a = extract_final_answer(text);
    return a ? a->method + ":" + a->text : std::string("none");
  };
  EXPECT_EQ(get("<think>maybe \\boxed{5}</think> <answer>7</answer>"), "answer_tag:7");
  EXPECT_EQ(get("<answer>the value is \\boxed{7}</answer>"), "answer_tag:7");
  EXPECT_EQ(get("<answer>3</answer> wait, \\boxed{4}"), "boxed:4");
  EXPECT_EQ(get("Natalia sold 48+24 = 72 clips.\n#### 72"), "hashes:72");
  EXPECT_EQ(get("So the answer is 3.5. Done"), "answer_is:3.5");
  EXPECT_EQ(get("Final Answer: $\\frac{1}{2}$"), "answer_is:$\\frac{1}{2}$");
  EXPECT_EQ(get("I think it is 5"), "none");
  AnswerExtraction boxed_only{
      .boxed = true, .answer_tag = false, .hashes = false, .answer_is = false};
  EXPECT_EQ(extract_final_answer("#### 3", boxed_only), std::nullopt);
}

TEST(AnswerExtraction, OnlyTheTailIsSearched) {
  std::string text = "\\boxed{1}" + std::string(5000, ' ') + "no answer here";
  EXPECT_EQ(extract_final_answer(text), std::nullopt);
  EXPECT_EQ(extract_final_answer(text, {.tail_chars = 0})->text, "1");
}

TEST(MathAnswerReward, ScoresThroughTheRegistry) {
  auto reward = make_reward("math_answer", nlohmann::json::object(), "test");
  Sample sample{.prompt = "",
                .completion = "<think>6*7</think><answer>\\boxed{42}</answer>",
                .completion_ids = {},
                .reference = "42",
                .metadata = {}};
  RewardResult result = reward->score(sample);
  EXPECT_EQ(result.value, 1.0);
  EXPECT_EQ(result.components.at("has_answer"), 1.0);
  EXPECT_EQ(result.info["extracted"], "42");
  sample.completion = "I don't know";
  result = reward->score(sample);
  EXPECT_EQ(result.value, 0.0);
  EXPECT_EQ(result.components.at("has_answer"), 0.0);
  sample.reference = "";
  EXPECT_FALSE(reward->score(sample).value.has_value());
}

TEST(MathAnswerReward, OptionsAreValidated) {
  auto custom = make_reward("math_answer", {{"correct", 2.0}, {"extract", {"hashes"}}}, "test");
  Sample sample{.prompt = "",
                .completion = "\\boxed{3}\n#### 3",
                .completion_ids = {},
                .reference = "3",
                .metadata = {}};
  EXPECT_EQ(custom->score(sample).value, 2.0);
  EXPECT_THROW(make_reward("math_answer", {{"tolerence", 1.0}}, "recipe.json"), Error);
  try {
    make_reward("math_answer", {{"extract", {"boxes"}}}, "recipe.json: rewards[0].options");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recipe.json: rewards[0].options"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("boxed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit
