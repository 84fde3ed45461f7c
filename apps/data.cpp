// `r1kit data prepare ...` turns text or JSONL corpora into token shards with a
// manifest of what was kept and dropped; `r1kit data generate ...` writes an
// environment's tasks as JSONL (SFT pairs with worked solutions, or plain
// text for a pretraining corpus), so the R1 pipeline can start from nothing.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "apps/subcommand.h"
#include "common/error.h"
#include "common/seed.h"
#include "data/prepare.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"

namespace r1kit::apps {
namespace {

struct GenerateDataArguments {
  std::string environment = "addition";
  std::string options_json = "{}";
  std::string prompt_template = "r1_zero";
  std::string format = "sft";
  int64_t count = 1000;
  int64_t seed = 0;
  std::string output;
};

int run_generate_data(const GenerateDataArguments& args) {
  nlohmann::json options = nlohmann::json::parse(args.options_json, nullptr, false);
  if (options.is_discarded() || !options.is_object()) {
    throw_usage_error("data generate: --options must be a JSON object, got " + args.options_json);
  }
  auto environment = make_environment(args.environment, options, "--options");
  auto prompt_template = make_prompt_template(args.prompt_template, "", "--template");
  std::ofstream out(args.output);
  if (!out) throw_io_error(args.output + ": cannot open for writing");
  std::mt19937_64 rng = make_rng(static_cast<uint64_t>(args.seed), "data/generate");
  auto tasks = environment->next_tasks(static_cast<size_t>(args.count), rng);
  int64_t written = 0;
  for (const auto& task : tasks) {
    std::string prompt = prompt_template->render(task);
    nlohmann::json line;
    if (args.format == "sft") {
      if (task.solution.empty()) {
        throw_usage_error("data generate: environment \"" + args.environment +
                          "\" gave no worked solution; try --options '{\"worked_steps\": true}'");
      }
      line = {{"prompt", prompt}, {"response", " " + task.solution}};
    } else if (args.format == "text") {
      line = {{"text", prompt + " " + (task.solution.empty() ? task.reference : task.solution)}};
    } else {
      line = {{"prompt", task.prompt}, {"answer", task.reference}};
    }
    out << line.dump() << "\n";
    ++written;
  }
  std::cerr << "wrote " << written << " " << args.format << " lines to " << args.output << "\n";
  return 0;
}

Action setup(CLI::App& app) {
  app.require_subcommand(1);
  auto prepare = std::make_shared<DataPrepareConfig>();
  CLI::App* prepare_app = app.add_subcommand("prepare", "clean, de-duplicate and tokenize corpora into token shards");
  prepare_app->add_option("--input", prepare->inputs, "text or JSONL files or folders (repeatable)")->required();
  prepare_app->add_option("--output", prepare->output_dir, "shards folder")->required();
  prepare_app->add_option("--tokenizer", prepare->tokenizer, "folder with tokenizer.json, or the file")->required();
  prepare_app->add_option("--format", prepare->format, "auto, text or jsonl")->capture_default_str();
  prepare_app->add_option("--text-split", prepare->text_split, "text files: blank_line, line or file")->capture_default_str();
  prepare_app->add_option("--text-field", prepare->text_field, "JSONL field holding the document")->capture_default_str();
  prepare_app->add_option("--min-chars", prepare->min_chars, "drop shorter documents")->capture_default_str();
  prepare_app->add_option("--max-chars", prepare->max_chars, "drop longer documents; 0 = no limit")->capture_default_str();
  prepare_app->add_flag("!--no-dedup", prepare->deduplicate, "keep exact duplicates");
  prepare_app->add_option("--threads", prepare->num_threads, "tokenisation threads; 0 = all cores");

  auto generate = std::make_shared<GenerateDataArguments>();
  CLI::App* generate_app = app.add_subcommand("generate", "write an environment's tasks as JSONL (sft, text or tasks)");
  generate_app->add_option("--environment", generate->environment, "environment name")->capture_default_str();
  generate_app->add_option("--options", generate->options_json, "environment options as JSON")->capture_default_str();
  generate_app->add_option("--template", generate->prompt_template, "prompt template")->capture_default_str();
  generate_app->add_option("--format", generate->format, "sft (prompt/response), text ({text}) or tasks (prompt/answer)")
      ->check(CLI::IsMember({"sft", "text", "tasks"}))
      ->capture_default_str();
  generate_app->add_option("--count", generate->count, "tasks to write")->capture_default_str();
  generate_app->add_option("--seed", generate->seed, "generator seed")->capture_default_str();
  generate_app->add_option("--output,-o", generate->output, "JSONL file to write")->required();

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

REGISTER_SUBCOMMAND("data", "prepare token shards from corpora; generate task data from environments", setup);

}  // namespace r1kit::apps
