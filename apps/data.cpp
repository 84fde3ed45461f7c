// `r1kit data prepare ...` turns text or JSONL corpora into token shards with a
// manifest of what was kept and dropped; `r1kit data generate ...` writes an
// environment's tasks as JSONL (SFT pairs with worked solutions, or plain
// text for a pretraining corpus), so the R1 pipeline can start from nothing.
#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/subcommand.h"
#include "common/error.h"
#include "data/prepare.h"
#include "environments/task_data.h"

namespace r1kit::apps {
namespace {

// The command line's form of a TaskDataConfig: --options arrives as JSON text.
struct GenerateDataArguments {
  TaskDataConfig config;
  std::string options_json = "{}";
};

int run_generate_data(GenerateDataArguments& args) {
  nlohmann::json options = nlohmann::json::parse(args.options_json, nullptr, false);
  if (options.is_discarded() || !options.is_object()) {
    throw_usage_error("data generate: --options must be a JSON object, got " + args.options_json);
  }
  args.config.environment.options = options;
  int64_t written = write_task_data(args.config, "r1kit data generate");
  std::cerr << "wrote " << written << " " << args.config.format << " lines to "
            << args.config.output << "\n";
  return 0;
}

Action setup(CLI::App& app) {
  app.require_subcommand(1);
  auto prepare = std::make_shared<DataPrepareConfig>();
  CLI::App* prepare_app =
      app.add_subcommand("prepare", "clean, de-duplicate and tokenize corpora into token shards");
  prepare_app->add_option("--input", prepare->inputs, "text or JSONL files or folders (repeatable)")
      ->required();
  prepare_app->add_option("--output", prepare->output_dir, "shards folder")->required();
  prepare_app
      ->add_option("--tokenizer", prepare->tokenizer, "folder with tokenizer.json, or the file")
      ->required();
  prepare_app->add_option("--format", prepare->format, "auto, text or jsonl")
      ->capture_default_str();
  prepare_app
      ->add_option("--text-split", prepare->text_split, "text files: blank_line, line or file")
      ->capture_default_str();
  prepare_app->add_option("--text-field", prepare->text_field, "JSONL field holding the document")
      ->capture_default_str();
  prepare_app->add_option("--min-chars", prepare->min_chars, "drop shorter documents")
      ->capture_default_str();
  prepare_app->add_option("--max-chars", prepare->max_chars, "drop longer documents; 0 = no limit")
      ->capture_default_str();
  prepare_app->add_flag("!--no-dedup", prepare->deduplicate, "keep exact duplicates");
  prepare_app->add_flag(
      "!--no-special-tokens", prepare->add_special_tokens,
      "do not put the tokenizer's post-processor tokens (a BOS) around documents");
  prepare_app->add_option("--threads", prepare->num_threads, "tokenisation threads; 0 = all cores");

  auto generate = std::make_shared<GenerateDataArguments>();
  CLI::App* generate_app =
      app.add_subcommand("generate", "write an environment's tasks as JSONL (sft, text or tasks)");
  TaskDataConfig& task_data = generate->config;
  generate_app->add_option("--environment", task_data.environment.name, "environment name")
      ->capture_default_str();
  generate_app->add_option("--options", generate->options_json, "environment options as JSON")
      ->capture_default_str();
  generate_app->add_option("--template", task_data.environment.prompt_template, "prompt template")
      ->capture_default_str();
  generate_app
      ->add_option("--format", task_data.format,
                   "sft (prompt/response), text ({text}) or tasks (prompt/answer)")
      ->check(CLI::IsMember({"sft", "text", "tasks"}))
      ->capture_default_str();
  generate_app->add_option("--count", task_data.count, "tasks to write")->capture_default_str();
  generate_app->add_option("--seed", task_data.seed, "generator seed")->capture_default_str();
  generate_app->add_option("--output,-o", task_data.output, "JSONL file to write")->required();

  return [prepare, generate, prepare_app, generate_app]() -> int {
    if (prepare_app->parsed()) {
      DataPrepareReport report = prepare_corpus(*prepare, "r1kit data prepare");
      std::cout << report.manifest.dump(2) << "\n";
      return 0;
    }
    if (generate_app->parsed()) return run_generate_data(*generate);
    return 2;
  };
}

}  // namespace

REGISTER_SUBCOMMAND("data",
                    "prepare token shards from corpora; generate task data from environments",
                    setup);

}  // namespace r1kit::apps
