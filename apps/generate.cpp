// `r1kit generate --model DIR --prompt TEXT ...`: samples from a Hugging Face
// model folder for prompts given on the command line or in a JSONL file,
// streams a single completion's text to the terminal as it is decoded, and
// writes every completion as one JSON line. Prompts get the tokenizer's special
// tokens (a BOS) as transformers' tokenizer(text) gives them; sampling knobs the
// command line leaves unset come from the model's generation_config.json.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "apps/plugin_option.h"
#include "apps/subcommand.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "policy/model_source.h"
#include "rollout/engine.h"
#include "rollout/generation_config.h"

namespace r1kit::apps {
namespace {

struct GenerateArguments {
  ModelSource model;
  std::vector<std::string> prompts;
  std::string prompts_file;
  std::string prompt_field = "prompt";
  std::string output;
  SamplingParams sampling;
  EngineOptions engine;
  bool no_stream = false;
  bool add_special_tokens = true;
  std::vector<std::string> plugins;
  // The sampling knobs given on the command line, by SamplingParams key: they
  // win over generation_config.json.
  std::vector<std::pair<std::string, CLI::Option*>> sampling_flags;
};

std::vector<std::string> read_prompts(const GenerateArguments& args) {
  std::vector<std::string> prompts = args.prompts;
  if (!args.prompts_file.empty()) {
    for_each_jsonl_line(args.prompts_file, [&](JsonlLine& line) {
      const nlohmann::json& value = line.value;
      if (!value.is_object() || !value.contains(args.prompt_field) ||
          !value[args.prompt_field].is_string()) {
        throw_jsonl_line_error(args.prompts_file, line.number,
                               "has no string field \"" + args.prompt_field + "\"");
      }
      prompts.push_back(value[args.prompt_field].get<std::string>());
    });
  }
  if (prompts.empty()) throw_usage_error("give at least one --prompt or a --prompts-file");
  return prompts;
}

int run_generate(GenerateArguments& args) {
  load_plugins(args.plugins);
  std::vector<std::string> texts = read_prompts(args);
  LoadedPolicy policy = load_policy(args.model, 0, "--model");
  std::vector<std::string> given;
  for (const auto& [key, option] : args.sampling_flags) {
    if (option->count() > 0) given.push_back(key);
  }
  std::vector<std::string> defaults =
      apply_generation_config(policy.model->config().generation_config, given, args.sampling,
                              args.model.path + "/generation_config.json");
  if (!defaults.empty()) {
    std::string keys;
    for (const auto& key : defaults) keys += (keys.empty() ? "" : ", ") + key;
    std::cerr << "generation_config.json sets " << keys << "\n";
  }
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& text : texts)
    prompts.push_back(policy.tokenizer->encode(text, args.add_special_tokens));
  auto weights = std::make_shared<PolicyWeights>(policy.model);
  RolloutEngine engine(weights, policy.tokenizer.get(), args.engine);
  const bool stream = !args.no_stream && texts.size() == 1 && args.sampling.n == 1;
  TextCallback on_text;
  if (stream) {
    std::cout << texts[0] << std::flush;
    on_text = [](int64_t, int64_t, const std::string& piece) { std::cout << piece << std::flush; };
  }
  auto completions = engine.generate(prompts, args.sampling, on_text);
  if (stream) std::cout << "\n";

  std::ofstream output;
  if (!args.output.empty()) {
    output.open(args.output);
    if (!output) throw_io_error(args.output + ": cannot open for writing");
  }
  for (const auto& completion : completions) {
    nlohmann::json line = {{"prompt_index", completion.prompt_index},
                           {"sample_index", completion.sample_index},
                           {"prompt", texts[completion.prompt_index]},
                           {"completion", completion.text},
                           {"finish_reason", finish_reason_name(completion.finish_reason)},
                           {"num_tokens", completion.token_ids.size()},
                           {"token_ids", completion.token_ids},
                           {"logprobs", completion.logprobs}};
    if (output.is_open()) output << line.dump() << "\n";
    if (!stream) {
      std::cout << "[" << completion.prompt_index << "." << completion.sample_index << "] "
                << texts[completion.prompt_index] << completion.text << "  ("
                << finish_reason_name(completion.finish_reason) << ")\n";
    }
  }
  const auto& stats = engine.last_stats();
  std::cerr << "generated " << stats.decode_tokens + static_cast<int64_t>(completions.size())
            << " tokens; decode "
            << (stats.decode_seconds > 0 ? stats.decode_tokens / stats.decode_seconds : 0.0)
            << " tokens/s\n";
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<GenerateArguments>();
  auto& s = args->sampling;
  app.add_option("--model", args->model.path,
                 "Hugging Face model folder (config.json, safetensors, tokenizer.json)")
      ->required();
  app.add_option("--tokenizer", args->model.tokenizer,
                 "tokenizer folder or file (default: the model folder)");
  app.add_option("--prompt,-p", args->prompts, "a prompt (repeatable)");
  app.add_option("--prompts-file", args->prompts_file, "JSONL file with one prompt per line");
  app.add_option("--prompt-field", args->prompt_field, "field of --prompts-file holding the prompt")
      ->capture_default_str();
  app.add_option("--output,-o", args->output, "write completions as JSONL here");
  auto& flags = args->sampling_flags;
  flags.emplace_back("temperature",
                     app.add_option("--temperature", s.temperature,
                                    "softmax temperature; 0 = greedy (default: the model's "
                                    "generation_config.json, else 1)"));
  flags.emplace_back("top_p", app.add_option("--top-p", s.top_p,
                                             "nucleus filter; 1 = off (default: "
                                             "generation_config.json, else 1)"));
  flags.emplace_back("top_k", app.add_option("--top-k", s.top_k,
                                             "keep the k most likely tokens; 0 = off "
                                             "(default: generation_config.json, else 0)"));
  app.add_option("--min-p", s.min_p, "drop tokens below min_p * p(max); 0 = off")
      ->capture_default_str();
  flags.emplace_back(
      "repetition_penalty",
      app.add_option("--repetition-penalty", s.repetition_penalty,
                     "divide the logits of tokens seen so far by it (multiply when negative); "
                     "1 = off (default: generation_config.json, else 1)"));
  app.add_option("--ban-token-id", s.banned_token_ids, "never sample this token id (repeatable)");
  app.add_flag("--mask-padded-vocab", s.mask_padded_vocab,
               "never sample ids past the tokenizer's vocabulary (always on when the model's "
               "vocabulary is larger than the tokenizer's)");
  app.add_option("--logits-processor", s.logits_processors,
                 "logits processors in order, by name (repeatable; must include temperature); "
                 "default: repetition_penalty banned_token_ids mask_padded_vocab temperature "
                 "top_k top_p min_p");
  app.add_option("--max-new-tokens", s.max_new_tokens, "completion budget in tokens")
      ->capture_default_str();
  app.add_option("--stop", s.stop_strings, "stop string, cut from the text (repeatable)");
  app.add_option("--stop-token-id", s.stop_token_ids, "stop token id (repeatable)");
  app.add_option("-n", s.n, "completions per prompt")->capture_default_str();
  app.add_option("--seed", s.seed, "sampling seed")->capture_default_str();
  app.add_option("--batch-size", args->engine.max_batch_size, "sequences decoded together")
      ->capture_default_str();
  app.add_option("--compute-dtype", args->engine.compute_dtype,
                 "rollout compute dtype: float32 or bfloat16")
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->capture_default_str();
  app.add_option("--device", args->model.device, "cpu, cuda or auto")->capture_default_str();
  app.add_flag("--no-stream", args->no_stream, "do not stream text to the terminal");
  add_plugin_option(app, args->plugins);
  app.add_flag("!--no-special-tokens", args->add_special_tokens,
               "encode prompts without the tokenizer's special tokens (a BOS); for prompts "
               "whose chat template already writes them");
  return [args] { return run_generate(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("generate", "sample completions from a model folder", setup);

}  // namespace r1kit::apps
