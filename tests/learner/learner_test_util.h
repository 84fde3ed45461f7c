// Shared by the learner tests: a tiny random policy written as a Hugging Face
// folder with a character tokenizer, and a GRPO recipe on it that trains in
// seconds (regex_match rewards the character '7').
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/run_dir.h"
#include "learner/distributed.h"
#include "learner/grpo_trainer.h"
#include "learner/recipe.h"
#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"

namespace r1kit::testing {

inline std::filesystem::path fresh_folder(const std::string& name) {
  auto path =
      std::filesystem::temp_directory_path() / ("r1kit_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

inline constexpr char kTinyAlphabet[] = "0123456789+-*= abcdefgh\n:?";

inline std::filesystem::path write_tiny_policy(const std::filesystem::path& folder,
                                               uint64_t seed = 3,
                                               const std::string& alphabet = kTinyAlphabet) {
  CharTokenizer tokenizer(alphabet);
  ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = tokenizer.vocab_size();
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.max_position_embeddings = 64;
  config.eos_token_ids = {*tokenizer.eos_id()};
  Transformer model = make_random_transformer(config, seed);
  save_pretrained(model, folder);
  tokenizer.save_folder(folder);
  return folder;
}

inline nlohmann::json tiny_grpo_recipe(const std::filesystem::path& model,
                                       const std::filesystem::path& run) {
  return {
      {"stage", "grpo"},
      {"seed", 1},
      {"output_dir", run.string()},
      {"model", {{"path", model.string()}}},
      {"environment",
       {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
      {"rewards", {{{"name", "regex_match"}, {"options", {{"pattern", "7"}, {"mode", "count"}}}}}},
      {"grpo", {{"num_generations", 8}, {"max_completion_length", 8}, {"max_prompt_length", 32}}},
      {"optimizer", {{"learning_rate", 0.01}, {"lr_scheduler_type", "constant"}}},
      {"trainer",
       {{"max_steps", 4}, {"prompts_per_step", 4}, {"eval_samples", 4}, {"log_completions", 1}}}};
}

// `json` written to `path` and loaded as a recipe.
inline Recipe write_and_load_recipe(const nlohmann::json& json, const std::filesystem::path& path) {
  std::ofstream(path) << json.dump(2);
  return load_recipe(path.string(), {});
}

// A one-process GrpoTrainer on `json` (written to root/recipe.json) with the
// recipe, run folder and process group it refers to.
struct TrainerOnRecipe {
  TrainerOnRecipe(const nlohmann::json& json, const std::filesystem::path& root)
      : recipe(write_and_load_recipe(json, root / "recipe.json")),
        run_dir(recipe.output_dir),
        distributed(Distributed::single()),
        trainer(recipe, run_dir, *distributed) {}

  Recipe recipe;
  RunDir run_dir;
  std::unique_ptr<Distributed> distributed;
  GrpoTrainer trainer;
};

}  // namespace r1kit::testing
