// GRPO with LoRA adapters (model.lora) on the tiny policy: a step trains the
// adapters and leaves every base tensor bit-identical; with beta > 0 the
// reference is the base with adapters off (no copy): its KL is exactly 0 while
// B is still 0; rollouts sample from the merged weights (the learner's ratio
// stays 1 on-policy); checkpoints and final/ are PEFT adapter folders.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "common/run_dir.h"
#include "common/safetensors.h"
#include "learner/learner.h"
#include "policy/lora.h"
#include "policy/peft_adapter.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

nlohmann::json lora_recipe(const fs::path& root) {
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["model"]["lora"] = {{"r", 4}, {"alpha", 8}, {"target_modules", "all-linear"}};
  json["grpo"]["beta"] = 0.04;
  json["optimizer"]["learning_rate"] = 0.05;
  return json;
}

std::map<std::string, at::Tensor> snapshot(Transformer& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : model->named_parameters())
    out[item.key()] = item.value().detach().clone();
  return out;
}

TEST(LoraGrpo, StepsTrainOnlyTheAdaptersAgainstTheBase) {
  const testing::TempFolder root;
  testing::TrainerOnRecipe run(lora_recipe(root.path()), root.path());
  GrpoTrainer& trainer = run.trainer;
  ASSERT_TRUE(has_lora(*trainer.policy()));
  EXPECT_FALSE(reference_needs_copy(trainer.policy(), run.recipe.grpo));
  const auto before = snapshot(trainer.policy());
  const nlohmann::json first = trainer.step(1);
  const nlohmann::json second = trainer.step(2);

  int64_t adapters_moved = 0;
  for (const auto& item : trainer.policy()->named_parameters()) {
    const bool adapter = item.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(item.value().requires_grad(), adapter) << item.key();
    if (!adapter) {
      EXPECT_TRUE(at::equal(item.value(), before.at(item.key()))) << item.key() << " changed";
    } else if (!at::equal(item.value(), before.at(item.key()))) {
      ++adapters_moved;
    }
  }
  EXPECT_GT(adapters_moved, 0) << "no adapter trained";
  // Step 1: B = 0, so the policy is the base and the reference (the base) agrees exactly.
  EXPECT_EQ(first.at("kl").get<double>(), 0.0);
  EXPECT_GT(second.at("kl").get<double>(), 0.0);
  // Step 2 samples from the trained adapters merged into the decode plan: on-policy ratio 1.
  EXPECT_NEAR(second.at("ratio_mean").get<double>(), 1.0, 1e-4);
}

// A module to save changes the base, so the reference is a frozen copy of the
// merged policy: equal to the policy while B = 0, and lm_head trains in full.
TEST(LoraGrpo, ModulesToSaveTrainInFullAgainstACopiedReference) {
  const testing::TempFolder root;
  nlohmann::json json = lora_recipe(root.path());
  json["model"]["lora"]["modules_to_save"] = {"lm_head"};
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  EXPECT_TRUE(reference_needs_copy(trainer.policy(), run.recipe.grpo));
  const auto before = snapshot(trainer.policy());
  const nlohmann::json first = trainer.step(1);
  trainer.step(2);
  EXPECT_EQ(first.at("kl").get<double>(), 0.0);
  EXPECT_TRUE(trainer.policy()->lm_head->weight.requires_grad());
  EXPECT_FALSE(at::equal(trainer.policy()->lm_head->weight, before.at("lm_head.weight")));
  EXPECT_TRUE(at::equal(trainer.policy()->model->embed_tokens->weight,
                        before.at("model.embed_tokens.weight")));
}

TEST(LoraGrpo, CheckpointsAndFinalAreAdapterFolders) {
  const testing::TempFolder root;
  nlohmann::json json = lora_recipe(root.path());
  json["trainer"]["max_steps"] = 2;
  json["trainer"]["save_steps"] = 1;
  json["trainer"]["eval_samples"] = 2;
  {
    testing::TrainerOnRecipe run(json, root.path());
    run.trainer.train(/*resume=*/false);
  }
  const fs::path final_folder = root / "run" / "final";
  EXPECT_TRUE(fs::exists(final_folder / kAdapterWeightsFile));
  EXPECT_TRUE(fs::exists(final_folder / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(final_folder / "model.safetensors"));
  EXPECT_TRUE(fs::exists(root / "run" / "checkpoints" / "step-1" / "model" / kAdapterConfigFile));
  // The final adapter, loaded on the base, is the trained policy.
  json["model"]["lora"]["path"] = final_folder.string();
  json["output_dir"] = (root / "again").string();
  testing::TrainerOnRecipe again(json, root.path());
  auto trained = read_safetensors(final_folder / kAdapterWeightsFile).tensors;
  int64_t compared = 0;
  for (const auto& item : again.trainer.policy()->named_parameters()) {
    auto found = trained.find("base_model.model." + item.key());
    if (found == trained.end()) continue;
    EXPECT_TRUE(at::equal(item.value(), found->second)) << item.key();
    ++compared;
  }
  EXPECT_EQ(compared, 2 * 2 * 7);  // lora_A and lora_B of 7 layers in 2 decoder layers
}

TEST(LoraGrpo, ModelPathOnAnAdapterFolderSaysWhatToDo) {
  const testing::TempFolder root;
  nlohmann::json json = lora_recipe(root.path());
  json["model"]["path"] = testing::fixture_path("tiny-qwen2-lora").string();
  try {
    testing::TrainerOnRecipe run(json, root.path());
    FAIL() << "an adapter folder was accepted as model.path";
  } catch (const Error& error) {
    EXPECT_NE(
        std::string(error.what()).find("is a PEFT adapter folder: set model.path to its base"),
        std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace r1kit
