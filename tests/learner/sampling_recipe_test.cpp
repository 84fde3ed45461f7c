// rollout_sampling_params: every sampling knob of the grpo section reaches the
// engine's SamplingParams, the defaults leave the processor chain as plain
// temperature sampling, and a bad processor order names its key path.
#include "learner/sampling_recipe.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

TEST(SamplingRecipe, EveryKnobOfTheGrpoSectionReachesSamplingParams) {
  GrpoConfig grpo =
      read_config<GrpoConfig>({{"num_generations", 4},
                               {"max_completion_length", 64},
                               {"temperature", 0.7},
                               {"top_p", 0.9},
                               {"top_k", 20},
                               {"min_p", 0.05},
                               {"repetition_penalty", 1.1},
                               {"banned_token_ids", {3, 5}},
                               {"mask_padded_vocab", true},
                               {"logits_processors",
                                {"temperature", "repetition_penalty", "banned_token_ids",
                                 "mask_padded_vocab", "top_k", "top_p", "min_p"}},
                               {"stop_strings", {"</answer>"}}},
                              "recipe.json");
  SamplingParams params = rollout_sampling_params(grpo);
  EXPECT_EQ(params.n, 4);
  EXPECT_EQ(params.max_new_tokens, 64);
  EXPECT_EQ(params.temperature, 0.7);
  EXPECT_EQ(params.top_p, 0.9);
  EXPECT_EQ(params.top_k, 20);
  EXPECT_EQ(params.min_p, 0.05);
  EXPECT_EQ(params.repetition_penalty, 1.1);
  EXPECT_EQ(params.banned_token_ids, (std::vector<int64_t>{3, 5}));
  EXPECT_TRUE(params.mask_padded_vocab);
  EXPECT_EQ(params.logits_processors, grpo.logits_processors);
  EXPECT_EQ(params.stop_strings, std::vector<std::string>{"</answer>"});
  EXPECT_EQ(params.seed, 0);
  EXPECT_EQ(LogitsProcessorChain(params).names(), grpo.logits_processors);
}

TEST(SamplingRecipe, DefaultsAreTemperatureSamplingOnly) {
  GrpoConfig grpo = read_config<GrpoConfig>(nlohmann::json::object(), "recipe.json");
  EXPECT_EQ(grpo.repetition_penalty, 1.0);
  EXPECT_TRUE(grpo.banned_token_ids.empty());
  EXPECT_FALSE(grpo.mask_padded_vocab);
  EXPECT_TRUE(grpo.logits_processors.empty());
  EXPECT_EQ(LogitsProcessorChain(rollout_sampling_params(grpo)).names(),
            std::vector<std::string>{"temperature"});
}

TEST(SamplingRecipe, BadProcessorOrderNamesTheKeyPath) {
  try {
    read_config<GrpoConfig>({{"logits_processors", {"temperature", "top_pp"}}}, "recipe.json");
    FAIL() << "an unknown processor was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_EQ(std::string(e.what()).rfind("recipe.json: logits_processors: unknown logits "
                                          "processor \"top_pp\" (did you mean \"top_p\"?)",
                                          0),
              0u)
        << e.what();
  }
  try {
    read_config<GrpoConfig>({{"repetition_penalty", 1.2}, {"logits_processors", {"temperature"}}},
                            "recipe.json");
    FAIL() << "a set knob left out of the order was read";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "recipe.json: logits_processors: repetition_penalty is set but the list leaves it "
              "out");
  }
}

}  // namespace
}  // namespace r1kit
