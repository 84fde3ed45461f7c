// Recipe validation: every kind of config error names the source and the key
// path, overrides go through the same checks, and the writer round-trips.
#include "common/config.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace r1kit {
namespace {

struct OptimizerSection {
  double learning_rate = 1e-6;
  int64_t warmup_steps = 0;
  void visit(ConfigVisitor& v) {
    v.field("learning_rate", learning_rate, {.min = 0.0, .min_exclusive = true});
    v.field("warmup_steps", warmup_steps, {.min = 0.0});
  }
};

struct RewardItem {
  std::string name;
  double weight = 1.0;
  nlohmann::json options = nlohmann::json::object();
  void visit(ConfigVisitor& v) {
    v.field("name", name, {.required = true});
    v.field("weight", weight);
    v.field("options", options);
  }
};

struct TestRecipe {
  std::string loss_type = "grpo";
  bool mask_truncated_completions = false;
  std::vector<int64_t> stop_token_ids;
  OptimizerSection optimizer;
  std::vector<RewardItem> rewards;
  void visit(ConfigVisitor& v) {
    v.field("loss_type", loss_type, {.choices = {"grpo", "bnpo", "dr_grpo", "dapo"}});
    v.field("mask_truncated_completions", mask_truncated_completions);
    v.field("stop_token_ids", stop_token_ids, {.min = 0.0});
    v.section("optimizer", optimizer);
    v.list("rewards", rewards);
  }
};

std::string error_of(const std::string& text) {
  try {
    read_config<TestRecipe>(nlohmann::json::parse(text), "recipe.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsWhenKeysAreAbsent) {
  auto recipe = read_config<TestRecipe>(nlohmann::json::object(), "recipe.json");
  EXPECT_EQ(recipe.loss_type, "grpo");
  EXPECT_DOUBLE_EQ(recipe.optimizer.learning_rate, 1e-6);
  EXPECT_TRUE(recipe.rewards.empty());
}

TEST(Config, ReadsNestedSectionsAndLists) {
  auto recipe = read_config<TestRecipe>(nlohmann::json::parse(R"({
    "loss_type": "dapo", "stop_token_ids": [1, 2],
    "optimizer": {"learning_rate": 3e-5, "warmup_steps": 10.0},
    "rewards": [{"name": "math_answer"}, {"name": "think_format", "weight": 0.5, "options": {"x": 1}}]
  })"),
                                        "recipe.json");
  EXPECT_EQ(recipe.loss_type, "dapo");
  EXPECT_EQ(recipe.stop_token_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(recipe.optimizer.learning_rate, 3e-5);
  EXPECT_EQ(recipe.optimizer.warmup_steps, 10);
  ASSERT_EQ(recipe.rewards.size(), 2u);
  EXPECT_EQ(recipe.rewards[1].name, "think_format");
  EXPECT_EQ(recipe.rewards[1].options["x"], 1);
}

TEST(Config, UnknownKeyNamesPathAndSuggests) {
  EXPECT_EQ(error_of(R"({"optimizer": {"learning_rte": 1}})"),
            "recipe.json: optimizer.learning_rte: unknown key (did you mean \"learning_rate\"?)");
  EXPECT_EQ(error_of(R"({"zzzzzz": 1})"), "recipe.json: zzzzzz: unknown key");
}

TEST(Config, WrongTypeNamesPathAndValue) {
  EXPECT_EQ(error_of(R"({"optimizer": {"learning_rate": "1e-5x"}})"),
            "recipe.json: optimizer.learning_rate: expected a number, got \"1e-5x\"");
  EXPECT_EQ(error_of(R"({"optimizer": {"warmup_steps": 1.5}})"),
            "recipe.json: optimizer.warmup_steps: expected an integer, got 1.5");
  EXPECT_EQ(error_of(R"({"mask_truncated_completions": 1})"),
            "recipe.json: mask_truncated_completions: expected true or false, got 1");
  EXPECT_EQ(error_of(R"({"optimizer": 3})"), "recipe.json: optimizer: expected an object, got 3");
  EXPECT_EQ(error_of(R"({"stop_token_ids": [1, "a"]})"),
            "recipe.json: stop_token_ids[1]: expected an integer, got \"a\"");
}

TEST(Config, OutOfRangeNamesBound) {
  EXPECT_EQ(error_of(R"({"optimizer": {"learning_rate": 0}})"),
            "recipe.json: optimizer.learning_rate: must be > 0, got 0");
  EXPECT_EQ(error_of(R"({"optimizer": {"warmup_steps": -1}})"),
            "recipe.json: optimizer.warmup_steps: must be >= 0, got -1");
}

TEST(Config, UnknownChoiceListsChoices) {
  EXPECT_EQ(
      error_of(R"({"loss_type": "dapoo"})"),
      "recipe.json: loss_type: unknown value \"dapoo\" (did you mean \"dapo\"?); expected one of: "
      "grpo, bnpo, dr_grpo, dapo");
}

TEST(Config, MissingRequiredKeyInListItem) {
  EXPECT_EQ(error_of(R"({"rewards": [{"name": "a"}, {"weight": 2}]})"),
            "recipe.json: rewards[1].name: required key is missing");
  EXPECT_EQ(error_of(R"({"rewards": [{"name": "a", "wieght": 2}]})"),
            "recipe.json: rewards[0].wieght: unknown key (did you mean \"weight\"?)");
}

TEST(Config, OverridesParseJsonOrString) {
  nlohmann::json recipe = nlohmann::json::object();
  apply_override(recipe, "optimizer.learning_rate=2e-5");
  apply_override(recipe, "loss_type=dr_grpo");
  apply_override(recipe, "stop_token_ids=[3,4]");
  auto parsed = read_config<TestRecipe>(recipe, "recipe.json");
  EXPECT_DOUBLE_EQ(parsed.optimizer.learning_rate, 2e-5);
  EXPECT_EQ(parsed.loss_type, "dr_grpo");
  EXPECT_EQ(parsed.stop_token_ids, (std::vector<int64_t>{3, 4}));
}

TEST(Config, OverrideGoesThroughTheSameChecks) {
  nlohmann::json recipe = nlohmann::json::object();
  apply_override(recipe, "optimizer.learning_rate=fast");
  EXPECT_THROW(read_config<TestRecipe>(recipe, "recipe.json"), Error);
  EXPECT_THROW(apply_override(recipe, "no_equals_sign"), Error);
  EXPECT_THROW(apply_override(recipe, "optimizer..x=1"), Error);
}

TEST(Config, WriterRoundTripsResolvedValues) {
  auto recipe = read_config<TestRecipe>(
      nlohmann::json::parse(R"({"loss_type": "bnpo", "rewards": [{"name": "r", "weight": 2}]})"),
      "recipe.json");
  nlohmann::json written = write_config(recipe);
  EXPECT_EQ(written["loss_type"], "bnpo");
  EXPECT_DOUBLE_EQ(written["optimizer"]["learning_rate"].get<double>(), 1e-6);
  auto again = read_config<TestRecipe>(written, "config.json");
  EXPECT_EQ(write_config(again), written);
}

TEST(Config, DidYouMeanOnlySuggestsCloseWords) {
  EXPECT_EQ(did_you_mean("temprature", {"temperature", "top_p"}), "temperature");
  EXPECT_EQ(did_you_mean("xyz", {"temperature", "top_p"}), "");
}

}  // namespace
}  // namespace r1kit
