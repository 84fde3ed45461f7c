// `r1kit generate` and `r1kit train` on a model whose vocabulary is padded past
// its tokenizer's, steered so that a padding id is the most likely token of
// every step: no crash, no padding id in any completion; and `r1kit generate`
// takes the sampling knobs the command line leaves unset from the model's
// generation_config.json.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "common/jsonl.h"
#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "tests/apps/run_command.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::run_r1kit;

// The tokenizer the folders are saved with (tiny_model.h's alphabet).
const CharTokenizer& tokenizer() {
  static const CharTokenizer tokenizer(testing::kTinyAlphabet);
  return tokenizer;
}

// A tiny policy of 8 padding rows past the tokenizer whose lm_head makes the
// padding id tokenizer().vocab_size() + 3 the most likely at every step and
// "4" the next; saved with the tokenizer and `generation_config` into `folder`.
fs::path write_padded_policy(const fs::path& folder, const nlohmann::json& generation_config) {
  ModelConfig config = testing::tiny_model_config(tokenizer().vocab_size() + 8);
  config.eos_token_ids = {*tokenizer().eos_id()};
  config.generation_config = generation_config;
  Transformer model = make_random_transformer(config, 3);
  {
    torch::NoGradGuard no_grad;
    // Every embedding leans on residual dimension 0, so the final norm's
    // output is positive there and the two rows below decide the logits.
    model->model->embed_tokens->weight.select(1, 0).fill_(100.0);
    at::Tensor head = model->output_weight();
    head.zero_();
    head[tokenizer().vocab_size() + 3][0] = 1.0;
    head[*tokenizer().token_to_id("4")][0] = 0.5;
  }
  save_pretrained(model, folder);
  tokenizer().save_folder(folder);
  return folder;
}

std::vector<nlohmann::json> read_lines(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  for_each_jsonl_line(path.string(), [&](JsonlLine& line) { lines.push_back(line.value); });
  return lines;
}

void expect_no_padding_ids(const std::vector<nlohmann::json>& completions) {
  ASSERT_FALSE(completions.empty());
  for (const auto& completion : completions) {
    for (int64_t id : completion["token_ids"].get<std::vector<int64_t>>())
      EXPECT_LT(id, tokenizer().vocab_size()) << completion.dump();
  }
}

TEST(PaddedVocabCli, GenerateGreedyAndSampledNeverEmitAPaddingId) {
  const testing::TempFolder temp;
  fs::path model = write_padded_policy(temp / "model", nlohmann::json());
  fs::path out = temp / "greedy.jsonl";
  auto greedy = run_r1kit(
      "generate --model " + model.string() +
      " -p '1+2=' -p '3+4=' --temperature 0 --max-new-tokens 5 --no-stream -o " + out.string());
  ASSERT_EQ(greedy.exit_code, 0) << greedy.output;
  std::vector<nlohmann::json> lines = read_lines(out);
  expect_no_padding_ids(lines);
  for (const auto& line : lines) EXPECT_EQ(line["completion"], "44444");

  out = temp / "sampled.jsonl";
  auto sampled =
      run_r1kit("generate --model " + model.string() +
                " -p '1+2=' --temperature 1 -n 6 --max-new-tokens 12 --seed 4 --no-stream -o " +
                out.string());
  ASSERT_EQ(sampled.exit_code, 0) << sampled.output;
  lines = read_lines(out);
  EXPECT_EQ(lines.size(), 6u);
  expect_no_padding_ids(lines);
}

TEST(PaddedVocabCli, GrpoStepOnAPaddedModelRuns) {
  const testing::TempFolder temp;
  fs::path model = write_padded_policy(temp / "model", nlohmann::json());
  nlohmann::json recipe = {
      {"stage", "grpo"},
      {"seed", 1},
      {"output_dir", (temp / "run").string()},
      {"model", {{"path", model.string()}}},
      {"environment",
       {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
      {"rewards", {{{"name", "regex_match"}, {"options", {{"pattern", "4"}, {"mode", "count"}}}}}},
      {"grpo", {{"num_generations", 4}, {"max_completion_length", 6}, {"max_prompt_length", 32}}},
      {"optimizer", {{"learning_rate", 0.01}, {"lr_scheduler_type", "constant"}}},
      {"trainer",
       {{"max_steps", 1}, {"prompts_per_step", 2}, {"eval_samples", 2}, {"log_completions", 8}}}};
  std::ofstream(temp / "recipe.json") << recipe.dump(2);
  auto result = run_r1kit("train " + (temp / "recipe.json").string());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::vector<nlohmann::json> samples = read_lines(temp / "run" / "samples.jsonl");
  ASSERT_FALSE(samples.empty());
}

TEST(GenerateCli, GenerationConfigSetsTheKnobsTheFlagsLeaveUnset) {
  const testing::TempFolder temp;
  // do_sample false: greedy unless --temperature says otherwise, as transformers.
  fs::path model =
      write_padded_policy(temp / "model", {{"do_sample", false}, {"temperature", 0.9}});
  auto run = [&](const std::string& flags, const std::string& name) {
    fs::path out = temp / name;
    auto result = run_r1kit("generate --model " + model.string() + " -p '1+2=' -n 3 " +
                            "--max-new-tokens 6 --no-stream -o " + out.string() + " " + flags);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::vector<std::string> completions;
    for (const auto& line : read_lines(out)) completions.push_back(line["completion"]);
    return std::make_pair(completions, result.output);
  };
  auto [defaults, log] = run("--seed 1", "defaults.jsonl");
  EXPECT_EQ(defaults, std::vector<std::string>(3, "444444"));
  EXPECT_NE(log.find("generation_config.json sets"), std::string::npos) << log;
  auto [sampled, sampled_log] = run("--seed 1 --temperature 1", "sampled.jsonl");
  EXPECT_NE(sampled, defaults);
}

}  // namespace
}  // namespace r1kit
