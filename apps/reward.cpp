// `r1kit reward COMPLETIONS.jsonl --recipe R.json | --reward NAME[:WEIGHT] ...`:
// scores a file of completions with a reward list, the way training would, and
// prints each reward's mean, its components' means, the error, timeout,
// not-applicable and skip counts and the weighted total: a reward is debugged here
// before a run depends on it. A reward that fails on its max_failure_fraction
// of a batch (by default: on every line of it) stops the command with exit 1
// and its first error, as it would stop training; --strict exits 1 on any
// failure. Each input line is one completion; TRL's column
// names are read first, then the aliases after them:
//   prompt      "prompt" | "question" | "problem": text, or chat messages
//               [{"role", "content"}, ...] rendered with --prompt-template
//   completion  "completion" | "response": text, or assistant messages whose
//               contents are joined (TRL's conversational format); required
//   reference   "reference" | "answer" | "solution" | "ground_truth": text, as is
//   completion_ids  token ids, for rewards that count tokens; optional
//   metadata    an object; the line's other keys are added to it (TRL hands
//               extra data-set columns to reward functions the same way)
#include "rewards/reward.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "apps/plugin_option.h"
#include "apps/subcommand.h"
#include "common/config.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "environments/prompt_template.h"
#include "learner/recipe.h"
#include "rewards/reward_set.h"

namespace r1kit::apps {
namespace {

struct RewardArguments {
  std::string input_path;
  std::string recipe_path;
  std::vector<std::string> rewards;  // NAME[:WEIGHT]
  std::vector<std::string> plugins;
  std::string output_path;
  std::string prompt_template = "chatml";
  int64_t threads = 0;
  int64_t batch_size = 256;
  bool strict = false;
};

// The recipe's `rewards` key, read alone so the rest of the recipe may be anything.
struct RewardList {
  std::vector<RewardSpec> rewards;
  void visit(ConfigVisitor& v) { v.list("rewards", rewards); }
};

std::vector<RewardSpec> rewards_from_recipe(const std::string& path) {
  nlohmann::json recipe = read_json_file(path, /*reject_duplicate_keys=*/true);
  load_recipe_plugins(recipe, std::filesystem::path(path).parent_path(), path);
  if (!recipe.is_object() || !recipe.contains("rewards")) {
    throw_config_error(path +
                       ": rewards: required key is missing (the list of rewards to score with)");
  }
  RewardList list = read_config<RewardList>({{"rewards", recipe["rewards"]}}, path);
  if (list.rewards.empty()) throw_config_error(path + ": rewards: the list is empty");
  return list.rewards;
}

// "math_answer" or "math_answer:0.5".
RewardSpec reward_from_flag(const std::string& flag) {
  RewardSpec spec;
  size_t colon = flag.find(':');
  spec.name = flag.substr(0, colon);
  if (spec.name.empty()) throw_usage_error("--reward " + flag + ": expected NAME or NAME:WEIGHT");
  if (colon != std::string::npos) {
    std::string weight = flag.substr(colon + 1);
    size_t used = 0;
    try {
      spec.weight = std::stod(weight, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != weight.size() || !std::isfinite(spec.weight)) {
      throw_usage_error("--reward " + flag + ": the weight \"" + weight + "\" is not a number");
    }
  }
  return spec;
}

// One line of the input, read into a Sample.
class LineReader {
 public:
  LineReader(std::string path, const PromptTemplate& chat_template)
      : path_(std::move(path)), chat_template_(chat_template) {}

  Sample read(const nlohmann::json& line, int64_t number) const {
    where_ = path_ + ":" + std::to_string(number);
    if (!line.is_object()) fail("expected a JSON object, got " + std::string(line.type_name()));
    Sample sample;
    const auto prompt_key = first_key(line, {"prompt", "question", "problem"});
    const auto completion_key = first_key(line, {"completion", "response"});
    const auto reference_key = first_key(line, {"reference", "answer", "solution", "ground_truth"});
    if (!completion_key) fail("no \"completion\" (or \"response\")");
    if (prompt_key) sample.prompt = prompt_text(line[*prompt_key], *prompt_key);
    sample.completion = completion_text(line[*completion_key], *completion_key);
    if (reference_key) sample.reference = string_of(line[*reference_key], *reference_key);
    if (line.contains("completion_ids")) {
      const nlohmann::json& ids = line["completion_ids"];
      if (!ids.is_array()) fail("completion_ids: expected a list of token ids");
      for (const nlohmann::json& id : ids) {
        if (!id.is_number_integer()) fail("completion_ids: expected integers, got " + id.dump());
        sample.completion_ids.push_back(id.get<int64_t>());
      }
    }
    sample.metadata = nlohmann::json::object();
    if (line.contains("metadata")) {
      if (!line["metadata"].is_object())
        fail("metadata: expected an object, got " + line["metadata"].dump());
      sample.metadata = line["metadata"];
    }
    for (const auto& [key, value] : line.items()) {
      bool used = key == "metadata" || key == "completion_ids" || key == prompt_key ||
                  key == completion_key || key == reference_key;
      if (!used && !sample.metadata.contains(key)) sample.metadata[key] = value;
    }
    return sample;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw_data_error(where_ + ": " + message);
  }

  static std::optional<std::string> first_key(const nlohmann::json& line,
                                              std::initializer_list<const char*> keys) {
    for (const char* key : keys) {
      if (line.contains(key)) return key;
    }
    return std::nullopt;
  }

  std::string string_of(const nlohmann::json& value, const std::string& key) const {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number()) return value.dump();  // a numeric answer such as 72
    fail(key + ": expected text, got " + value.dump());
  }

  std::vector<ChatMessage> messages_of(const nlohmann::json& value, const std::string& key) const {
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < value.size(); ++i) {
      const nlohmann::json& m = value[i];
      std::string item = key + "[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("content") || !m["content"].is_string()) {
        fail(item + ": expected {\"role\": ..., \"content\": \"...\"}, got " + m.dump());
      }
      messages.push_back({m.value("role", std::string("user")), m["content"].get<std::string>()});
    }
    return messages;
  }

  std::string prompt_text(const nlohmann::json& value, const std::string& key) const {
    if (!value.is_array()) return string_of(value, key);
    Task task;
    task.messages = messages_of(value, key);
    return chat_template_.render(task);
  }

  std::string completion_text(const nlohmann::json& value, const std::string& key) const {
    if (!value.is_array()) return string_of(value, key);
    std::string text;
    for (const ChatMessage& m : messages_of(value, key)) text += m.content;
    return text;
  }

  std::string path_;
  const PromptTemplate& chat_template_;
  mutable std::string where_;
};

// Reads every line first, so a malformed one stops the command before any scoring.
std::vector<std::pair<int64_t, Sample>> read_completions(const std::string& path,
                                                         const PromptTemplate& chat_template) {
  LineReader reader(path, chat_template);
  std::vector<std::pair<int64_t, Sample>> samples;
  for_each_jsonl_line(path, [&](JsonlLine& line) {
    samples.emplace_back(line.number, reader.read(line.value, line.number));
  });
  if (samples.empty()) throw_data_error(path + ": no completions in the file");
  return samples;
}

// The numbers printed at the end, gathered over all batches.
struct Tally {
  std::vector<double> values;  // applicable values, fallbacks of failed calls included
  int64_t not_applicable = 0;
  int64_t errors = 0;
  int64_t timeouts = 0;
  int64_t skipped = 0;
  std::map<std::string, std::vector<double>> components;
  std::string first_failure;  // "file:line: why" of the first error or timeout, for the report
};

std::pair<double, double> mean_and_std(const std::vector<double>& xs) {
  if (xs.empty()) return {0.0, 0.0};
  double mean = 0.0;
  for (double x : xs) mean += x;
  mean /= static_cast<double>(xs.size());
  double var = 0.0;
  for (double x : xs) var += (x - mean) * (x - mean);
  // Unbiased, as rewards/<name>/std in the training metrics.
  double std = xs.size() > 1 ? std::sqrt(var / static_cast<double>(xs.size() - 1)) : 0.0;
  return {mean, std};
}

const char* outcome_name(RewardOutcome outcome) {
  switch (outcome) {
    case RewardOutcome::kOk:
      return "ok";
    case RewardOutcome::kNotApplicable:
      return "not_applicable";
    case RewardOutcome::kError:
      return "error";
    case RewardOutcome::kTimeout:
      return "timeout";
    case RewardOutcome::kSkipped:
      return "skipped";
  }
  return "?";
}

nlohmann::json line_scores(const BatchScores& scores, size_t n, int64_t line_number) {
  nlohmann::json out = {{"line", line_number}, {"total", scores.totals[n]}};
  nlohmann::json rewards = nlohmann::json::object(), outcomes = nlohmann::json::object();
  nlohmann::json components = nlohmann::json::object(), info = nlohmann::json::object();
  for (size_t k = 0; k < scores.names.size(); ++k) {
    const std::string& name = scores.names[k];
    rewards[name] =
        scores.values[n][k] ? nlohmann::json(*scores.values[n][k]) : nlohmann::json(nullptr);
    outcomes[name] = outcome_name(scores.outcomes[n][k]);
    if (!scores.components[n][k].empty()) components[name] = scores.components[n][k];
    if (!scores.info[n][k].is_null()) info[name] = scores.info[n][k];
  }
  out["rewards"] = rewards;
  out["outcomes"] = outcomes;
  if (!components.empty()) out["components"] = components;
  if (!info.empty()) out["info"] = info;
  return out;
}

void print_report(const RewardSet& set, const std::vector<Tally>& tallies,
                  const std::vector<double>& totals, const std::string& input_path) {
  std::printf("r1kit reward: %zu completions from %s, %zu rewards\n", totals.size(),
              input_path.c_str(), set.size());
  std::printf("%-28s %8s %10s %10s %7s %7s %7s %9s\n", "reward", "weight", "mean", "std", "scored",
              "n/a", "errors", "timeouts");
  for (size_t k = 0; k < set.size(); ++k) {
    const Tally& t = tallies[k];
    auto [mean, std] = mean_and_std(t.values);
    std::printf("%-28s %8.3f %10.4f %10.4f %7zu %7lld %7lld %9lld\n",
                set.spec(k).metric_name().c_str(), set.spec(k).weight, mean, std, t.values.size(),
                static_cast<long long>(t.not_applicable), static_cast<long long>(t.errors),
                static_cast<long long>(t.timeouts));
    for (const auto& [part, xs] : t.components) {
      auto [part_mean, part_std] = mean_and_std(xs);
      std::string name = "  " + set.spec(k).metric_name() + "/" + part;
      std::printf("%-28s %8s %10.4f %10.4f %7zu\n", name.c_str(), "", part_mean, part_std,
                  xs.size());
    }
  }
  auto [mean, std] = mean_and_std(totals);
  std::printf("%-28s %8s %10.4f %10.4f %7zu\n", "total", "", mean, std, totals.size());
  for (size_t k = 0; k < set.size(); ++k) {
    if (tallies[k].skipped == 0) continue;
    std::printf("%s skipped %lld calls after %lld timeouts in a row (max_consecutive_timeouts)\n",
                set.spec(k).metric_name().c_str(), static_cast<long long>(tallies[k].skipped),
                static_cast<long long>(set.spec(k).max_consecutive_timeouts));
  }
  for (size_t k = 0; k < set.size(); ++k) {
    if (tallies[k].first_failure.empty()) continue;
    std::printf("%s failed first at %s\n", set.spec(k).metric_name().c_str(),
                tallies[k].first_failure.c_str());
  }
}

int run_reward(const RewardArguments& args) {
  if (args.recipe_path.empty() && args.rewards.empty()) {
    throw_usage_error("reward: give --recipe FILE or at least one --reward NAME[:WEIGHT]");
  }
  load_plugins(args.plugins);
  std::vector<RewardSpec> specs;
  std::string source = args.recipe_path.empty() ? "--reward" : args.recipe_path;
  if (!args.recipe_path.empty()) specs = rewards_from_recipe(args.recipe_path);
  for (const std::string& flag : args.rewards) specs.push_back(reward_from_flag(flag));
  auto chat_template = make_prompt_template(args.prompt_template, "", "--prompt-template");
  std::vector<std::pair<int64_t, Sample>> lines = read_completions(args.input_path, *chat_template);
  RewardSet set(specs, source);

  std::ofstream output;
  if (!args.output_path.empty()) {
    output.open(args.output_path);
    if (!output) throw_io_error(args.output_path + ": cannot write the scores");
  }
  ThreadPool pool(static_cast<size_t>(args.threads));
  std::vector<Tally> tallies(set.size());
  std::vector<double> totals;
  std::optional<Error> stop;  // a reward failed on too much of a batch
  for (size_t start = 0; start < lines.size(); start += static_cast<size_t>(args.batch_size)) {
    size_t end = std::min(lines.size(), start + static_cast<size_t>(args.batch_size));
    std::vector<Sample> batch;
    for (size_t i = start; i < end; ++i) batch.push_back(std::move(lines[i].second));
    BatchScores scores = set.score(batch, pool);
    for (size_t n = 0; n < batch.size(); ++n) {
      totals.push_back(scores.totals[n]);
      for (size_t k = 0; k < set.size(); ++k) {
        Tally& t = tallies[k];
        if (scores.values[n][k]) {
          t.values.push_back(*scores.values[n][k]);
        } else {
          ++t.not_applicable;
        }
        for (const auto& [part, value] : scores.components[n][k])
          t.components[part].push_back(value);
        RewardOutcome outcome = scores.outcomes[n][k];
        bool failed = outcome == RewardOutcome::kError || outcome == RewardOutcome::kTimeout ||
                      outcome == RewardOutcome::kSkipped;
        if (failed && t.first_failure.empty()) {
          t.first_failure = args.input_path + ":" + std::to_string(lines[start + n].first) + ": " +
                            std::string(outcome_name(outcome)) + ": " +
                            scores.info[n][k].begin()->get<std::string>();
        }
      }
      if (output.is_open()) output << line_scores(scores, n, lines[start + n].first).dump() << "\n";
    }
    for (size_t k = 0; k < set.size(); ++k) {
      tallies[k].errors += scores.errors[k];
      tallies[k].timeouts += scores.timeouts[k];
      tallies[k].skipped += scores.skipped[k];
    }
    try {
      set.check_failures(scores.failure_counts(), "lines " + std::to_string(lines[start].first) +
                                                      "-" + std::to_string(lines[end - 1].first) +
                                                      " of " + args.input_path);
    } catch (const Error& e) {
      stop = e;
      break;
    }
  }
  print_report(set, tallies, totals, args.input_path);
  set.warn_about_failures("r1kit reward");
  if (output.is_open()) {
    output.close();
    if (!output) throw_io_error(args.output_path + ": writing the scores failed");
    log_info() << "per-line scores written to " << args.output_path;
  }
  if (stop) throw *stop;
  int64_t failed = 0;
  for (const Tally& t : tallies) failed += t.errors + t.timeouts + t.skipped;
  return args.strict && failed > 0 ? 1 : 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<RewardArguments>();
  app.add_option(
         "completions", args->input_path,
         "JSONL, one completion a line: {\"prompt\", \"completion\", \"answer\", \"metadata\"}")
      ->required();
  app.add_option("--recipe", args->recipe_path, "score with this recipe's \"rewards\" list");
  app.add_option("--reward", args->rewards,
                 "add a reward by name with its default options: math_answer:1.0")
      ->type_name("NAME[:WEIGHT]");
  add_plugin_option(app, args->plugins);
  app.add_option("--output", args->output_path, "write each line's scores to this JSONL file");
  app.add_option("--prompt-template", args->prompt_template,
                 "renders chat-message prompts: chatml, r1_zero, plain")
      ->capture_default_str();
  app.add_option("--threads", args->threads, "scoring threads; 0 = one per core")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch-size", args->batch_size, "completions scored together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--strict", args->strict,
               "exit 1 when any reward call errored, timed out or was skipped");
  return [args] { return run_reward(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("reward", "score a JSONL of completions with a recipe's rewards, to debug them",
                    setup);

}  // namespace r1kit::apps
