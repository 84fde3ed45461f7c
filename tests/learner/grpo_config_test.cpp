// GrpoConfig and OptimizerConfig: TRL defaults, the loss_type -> aggregation
// map, aliases, and cross-field errors that name the key path.
#include "learner/grpo_config.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "learner/optimizer.h"
#include "learner/trainer_config.h"

namespace r1kit {
namespace {

std::string config_error(const nlohmann::json& json) {
  try {
    read_config<GrpoConfig>(json, "recipe.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    return e.what();
  }
  ADD_FAILURE() << "no error for " << json.dump();
  return "";
}

TEST(GrpoConfig, DefaultsFollowTrl) {
  GrpoConfig config = read_config<GrpoConfig>(nlohmann::json::object(), "recipe.json");
  EXPECT_EQ(config.num_generations, 8);
  EXPECT_EQ(config.beta, 0.0);
  EXPECT_EQ(config.epsilon, 0.2);
  EXPECT_EQ(config.effective_epsilon_high(), 0.2);
  EXPECT_EQ(config.loss_type, "dapo");
  EXPECT_EQ(config.loss_aggregation(), "token_mean");
  EXPECT_EQ(config.scale_rewards, "group");
  EXPECT_EQ(config.kl_estimator(), "k3");
  EXPECT_FALSE(config.uses_reference_model());
  EXPECT_FALSE(config.uses_value_model());
}

TEST(GrpoConfig, LossTypesMapToAggregations) {
  auto aggregation = [](const std::string& loss_type) {
    return read_config<GrpoConfig>({{"loss_type", loss_type}}, "r.json").loss_aggregation();
  };
  EXPECT_EQ(aggregation("grpo"), "seq_mean_token_mean");
  EXPECT_EQ(aggregation("bnpo"), "token_mean");
  EXPECT_EQ(aggregation("dapo"), "token_mean");
  EXPECT_EQ(aggregation("dr_grpo"), "seq_mean_token_sum_norm");
}

TEST(GrpoConfig, ReadsDapoRecipe) {
  nlohmann::json json = {{"epsilon_high", 0.28},
                         {"kl_loss_type", "low_var_kl"},
                         {"beta", 0.001},
                         {"filter_groups", {{"enable", true}, {"max_num_gen_batches", 4}}}};
  GrpoConfig config = read_config<GrpoConfig>(json, "r.json");
  EXPECT_EQ(config.effective_epsilon_high(), 0.28);
  EXPECT_EQ(config.kl_estimator(), "k3");
  EXPECT_TRUE(config.uses_reference_model());
  EXPECT_TRUE(config.filter_groups.enable);
  EXPECT_EQ(config.filter_groups.max_num_gen_batches, 4);
  EXPECT_EQ(read_config<GrpoConfig>({{"kl_loss_type", "mse"}}, "r.json").kl_estimator(), "k2");
  EXPECT_EQ(read_config<GrpoConfig>({{"kl_loss_type", "k1"}}, "r.json").kl_estimator(), "k1");
}

TEST(GrpoConfig, CrossFieldErrorsNameTheKey) {
  std::string message = config_error({{"epsilon", 0.3}, {"epsilon_high", 0.2}});
  EXPECT_NE(message.find("recipe.json"), std::string::npos) << message;
  EXPECT_NE(message.find("epsilon_high"), std::string::npos) << message;
  EXPECT_NE(config_error({{"epsilon_high", -0.5}}).find("epsilon_high"), std::string::npos);
  EXPECT_NE(config_error({{"clip_ratio_c", 0.5}}).find("clip_ratio_c"), std::string::npos);
  EXPECT_NE(config_error({{"num_generations", 1}}).find("num_generations"), std::string::npos);
  EXPECT_NE(config_error({{"filter_groups", {{"enabel", true}}}}).find("filter_groups.enabel"),
            std::string::npos);
  std::string choice = config_error({{"adv_estimator", "ppo"}});
  EXPECT_NE(choice.find("reinforce_plus_plus"), std::string::npos) << choice;
  // One completion per prompt is fine where no group is compared.
  EXPECT_EQ(read_config<GrpoConfig>({{"num_generations", 1}, {"adv_estimator", "gae"}}, "r.json")
                .num_generations,
            1);
}

TEST(GrpoConfig, WriterRoundTrips) {
  GrpoConfig config =
      read_config<GrpoConfig>({{"epsilon_high", 0.28}, {"loss_type", "grpo"}}, "r.json");
  nlohmann::json written = write_config(config);
  EXPECT_EQ(written["epsilon_high"], 0.28);
  EXPECT_EQ(written["filter_groups"]["enable"], false);
  GrpoConfig again = read_config<GrpoConfig>(written, "resolved.json");
  EXPECT_EQ(again.loss_type, "grpo");
  EXPECT_EQ(again.effective_epsilon_high(), 0.28);
}

TEST(OptimizerConfig, ReadsHfNamesAndChecksSchedules) {
  OptimizerConfig config = read_config<OptimizerConfig>(
      {{"learning_rate", 3e-6}, {"lr_scheduler_type", "cosine"}, {"warmup_ratio", 0.1}}, "r.json");
  EXPECT_EQ(config.learning_rate, 3e-6);
  EXPECT_EQ(config.lr_scheduler_type, "cosine");
  EXPECT_EQ(config.max_grad_norm, 1.0);
  try {
    read_config<OptimizerConfig>({{"lr_scheduler_type", "cosin"}}, "r.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lr_scheduler_type"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_config<OptimizerConfig>({{"adam_beta2", 1.0}}, "r.json"), Error);
}

TEST(GrpoConfig, ReadsMultiTurnKnobs) {
  GrpoConfig config =
      read_config<GrpoConfig>({{"stop_strings", {"</tool>"}}, {"max_turns", 3}}, "r.json");
  EXPECT_EQ(config.stop_strings, std::vector<std::string>{"</tool>"});
  EXPECT_EQ(config.max_turns, 3);
  EXPECT_NE(config_error({{"stop_strings", {""}}}).find("stop_strings"), std::string::npos);
  EXPECT_NE(config_error({{"max_turns", -1}}).find("max_turns"), std::string::npos);
  EXPECT_NE(config_error({{"stop_strings", "</tool>"}}).find("stop_strings"), std::string::npos);
}

TEST(TrainerConfig, Bf16IsABoolean) {
  EXPECT_FALSE(read_config<TrainerConfig>(nlohmann::json::object(), "r.json").bf16);
  EXPECT_TRUE(read_config<TrainerConfig>({{"bf16", true}}, "r.json").bf16);
  EXPECT_THROW(read_config<TrainerConfig>({{"bf16", "yes"}}, "r.json"), Error);
}

}  // namespace
}  // namespace r1kit
