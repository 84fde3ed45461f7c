// Procedural environments and prompt templates.
#include <gtest/gtest.h>

#include <set>

#include "common/countdown_check.h"
#include "common/error.h"
#include "common/rational.h"
#include "common/seed.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"

namespace r1kit {
namespace {

std::unique_ptr<Environment> env(const std::string& name,
                                 nlohmann::json options = nlohmann::json::object()) {
  return make_environment(name, options, "test");
}

TEST(Environment, UnknownNameListsTheKnownOnes) {
  try {
    env("countdwn");
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("did you mean \"countdown\""), std::string::npos) << what;
    EXPECT_NE(what.find("jsonl"), std::string::npos) << what;
  }
  EXPECT_THROW(env("addition", {{"digts", 3}}), Error);
}

TEST(Environment, UnknownNameIsTheRegistryMessage) {
  EXPECT_EQ(registered_environments(), environment_registry().names());
  try {
    make_environment("countdwn", nlohmann::json::object(), "recipe.json: environment.name");
    FAIL() << "an unknown environment was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_STREQ(e.what(),
                 "recipe.json: environment.name: unknown environment \"countdwn\" (did you mean "
                 "\"countdown\"?); known: addition, calculator, countdown, jsonl, linear_equation, "
                 "multiplication, sorting");
  }
}

TEST(Environment, SameSeedSameTasksAndEvalIsHeldOut) {
  for (const std::string name :
       {"addition", "multiplication", "countdown", "sorting", "linear_equation", "calculator"}) {
    auto a = env(name, {{"eval_size", 50}});
    auto b = env(name, {{"eval_size", 50}});
    std::mt19937_64 rng_a = make_rng(7, "environment"), rng_b = make_rng(7, "environment");
    std::vector<Task> ta = a->next_tasks(100, rng_a), tb = b->next_tasks(100, rng_b);
    ASSERT_EQ(ta.size(), 100u) << name;
    std::set<std::string> eval;
    for (const Task& t : a->eval_tasks()) eval.insert(t.prompt);
    EXPECT_EQ(a->eval_tasks().size(), b->eval_tasks().size()) << name;
    EXPECT_GT(eval.size(), 40u) << name;
    for (size_t i = 0; i < ta.size(); ++i) {
      EXPECT_EQ(ta[i].prompt, tb[i].prompt) << name;
      EXPECT_FALSE(ta[i].reference.empty()) << name;
      EXPECT_EQ(eval.count(ta[i].prompt), 0u)
          << name << ": a training task is held out: " << ta[i].prompt;
    }
  }
}

TEST(Arithmetic, ReferencesAreRightAndDigitsSetDifficulty) {
  std::mt19937_64 rng(1);
  for (const Task& t : env("addition", {{"digits", 5}, {"operands", 3}})->next_tasks(50, rng)) {
    auto numbers = t.metadata["numbers"].get<std::vector<int64_t>>();
    ASSERT_EQ(numbers.size(), 3u);
    for (int64_t n : numbers) EXPECT_TRUE(n >= 10000 && n <= 99999) << n;
    EXPECT_EQ(std::stoll(t.reference), numbers[0] + numbers[1] + numbers[2]);
  }
  for (const Task& t : env("multiplication", {{"digits", 3}})->next_tasks(50, rng)) {
    auto numbers = t.metadata["numbers"].get<std::vector<int64_t>>();
    EXPECT_EQ(std::stoll(t.reference), numbers[0] * numbers[1]);
  }
}

TEST(Arithmetic, WorkedStepsEndInTheAnswer) {
  std::mt19937_64 rng(2);
  Task add = env("addition", {{"worked_steps", true}})->next_tasks(1, rng)[0];
  EXPECT_NE(add.solution.find("ones:"), std::string::npos) << add.solution;
  EXPECT_NE(add.solution.find("<answer>" + add.reference + "</answer>"), std::string::npos)
      << add.solution;
  Task mul = env("multiplication", {{"worked_steps", true}, {"digits", 3}})->next_tasks(1, rng)[0];
  EXPECT_NE(mul.solution.find("partial products: " + mul.reference), std::string::npos)
      << mul.solution;
}

TEST(Arithmetic, CompactStepsAreFixedWidthColumnSums) {
  std::mt19937_64 rng(4);
  nlohmann::json options = {{"worked_steps", true}, {"solution_style", "compact"}, {"digits", 3}};
  for (const Task& task : env("addition", options)->next_tasks(50, rng)) {
    auto numbers = task.metadata["numbers"].get<std::vector<int64_t>>();
    std::string expected;
    int64_t a = numbers[0], b = numbers[1], carry = 0;
    for (int place = 0; place < 3; ++place, a /= 10, b /= 10) {
      int64_t sum = a % 10 + b % 10 + carry;
      expected += std::to_string(a % 10) + "+" + std::to_string(b % 10) + "+" +
                  std::to_string(carry) + "=" + (sum < 10 ? "0" : "") + std::to_string(sum) + "\n";
      carry = sum / 10;
    }
    EXPECT_EQ(task.solution,
              "<think>\n" + expected + "</think>\n<answer>" + task.reference + "</answer>");
  }
}

TEST(Arithmetic, WorkedFractionMixesStylesWithoutChangingTheTasks) {
  std::mt19937_64 plain_rng(6), mixed_rng(6);
  auto plain = env("addition", {{"digits", 2}})->next_tasks(400, plain_rng);
  auto mixed = env("addition", {{"digits", 2},
                                {"worked_steps", true},
                                {"solution_style", "compact"},
                                {"worked_fraction", 0.3}})
                   ->next_tasks(400, mixed_rng);
  int worked = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].prompt, mixed[i].prompt);
    bool shows_steps = mixed[i].solution.find("=") != std::string::npos;
    worked += shows_steps;
    if (!shows_steps)
      EXPECT_EQ(mixed[i].solution,
                "<think>\n</think>\n<answer>" + mixed[i].reference + "</answer>");
  }
  EXPECT_NEAR(worked / 400.0, 0.3, 0.07);
  EXPECT_THROW(env("addition", {{"worked_fraction", 1.5}}), Error);
  EXPECT_THROW(env("addition", {{"solution_style", "short"}}), Error);
}

TEST(Countdown, TasksAreSolvableAndCheckedByEvaluation) {
  auto countdown = env("countdown", {{"num_numbers", 4}});
  std::mt19937_64 rng(3);
  for (const Task& t : countdown->next_tasks(30, rng)) {
    // The generator's own solution passes the check.
    std::string expression = t.solution.substr(t.solution.find("<answer>") + 8);
    expression = expression.substr(0, expression.find("</answer>"));
    auto numbers = t.metadata["numbers"].get<std::vector<int64_t>>();
    EXPECT_TRUE(check_countdown(expression, numbers, t.metadata["target"].get<int64_t>()).correct)
        << expression;
    EXPECT_EQ(countdown->step(t, {}, "<think>x</think><answer>" + expression + "</answer>").reward,
              1.0);
    EXPECT_EQ(countdown->step(t, {}, "<answer>0</answer>").reward, 0.0);
  }
}

TEST(Sorting, ReferenceIsSorted) {
  std::mt19937_64 rng(4);
  Task t = env("sorting", {{"length", 8}})->next_tasks(1, rng)[0];
  auto numbers = t.metadata["numbers"].get<std::vector<int64_t>>();
  ASSERT_EQ(numbers.size(), 8u);
  std::sort(numbers.begin(), numbers.end());
  std::string expected;
  for (int64_t n : numbers) expected += (expected.empty() ? "" : ", ") + std::to_string(n);
  EXPECT_EQ(t.reference, expected);
}

TEST(LinearEquation, ReferenceSolvesTheEquation) {
  std::mt19937_64 rng(5);
  for (bool integer : {true, false}) {
    for (const Task& t :
         env("linear_equation", {{"both_sides", true}, {"integer_solutions", integer}})
             ->next_tasks(40, rng)) {
      int64_t a = t.metadata["a"], b = t.metadata["b"], c = t.metadata["c"], d = t.metadata["d"];
      std::string ref = t.reference;
      Rational x = integer ? Rational(std::stoll(ref)) : Rational(0);
      if (!integer) {
        bool negative = ref[0] == '-';
        if (ref.find("\\frac{") != std::string::npos) {
          size_t open = ref.find('{');
          int64_t p = std::stoll(ref.substr(open + 1));
          int64_t q = std::stoll(ref.substr(ref.find('{', open + 1) + 1));
          x = *Rational::make(negative ? -p : p, q);
        } else {
          x = Rational(std::stoll(ref));
        }
      }
      EXPECT_EQ(*add(*mul(Rational(a), x), Rational(b)), *add(*mul(Rational(c), x), Rational(d)))
          << t.prompt << " x=" << ref;
    }
  }
}

TEST(PromptTemplate, RendersR1ZeroChatMlAndPlain) {
  Task task{.prompt = "What is 2+2?"};
  std::string r1 = make_prompt_template("r1_zero", "", "test")->render(task);
  EXPECT_TRUE(r1.starts_with("A conversation between User and Assistant."));
  EXPECT_TRUE(r1.ends_with("User: What is 2+2?. Assistant:")) << r1;
  EXPECT_EQ(make_prompt_template("chatml", "Be brief.", "test")->render(task),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  Task chat{.messages = {{"system", "S"}, {"user", "U"}}};
  EXPECT_EQ(
      make_prompt_template("chatml", "ignored", "test")->render(chat),
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(make_prompt_template("plain", "", "test")->render(task), "What is 2+2?");
  EXPECT_THROW(make_prompt_template("chatlm", "", "recipe.json"), Error);
}

TEST(EnvironmentConfig, ReadsWithDefaults) {
  auto config = read_config<EnvironmentConfig>(
      nlohmann::json{{"name", "countdown"}, {"options", {{"num_numbers", 3}}}}, "r.json");
  EXPECT_EQ(config.name, "countdown");
  EXPECT_EQ(config.prompt_template, "r1_zero");
  EXPECT_EQ(make_environment(config.name, config.options, "r.json")
                ->next_tasks(1, *std::make_unique<std::mt19937_64>(1))[0]
                .metadata["numbers"]
                .size(),
            3u);
}

}  // namespace
}  // namespace r1kit
