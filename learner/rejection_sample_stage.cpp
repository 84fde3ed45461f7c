// The `rejection_sample` stage (see rejection_sample_stage.h): sample, score,
// keep what the rewards accept, write SFT JSONL plus a summary with the
// acceptance counts. A fixed seed gives the same file on a CPU run.
#include "learner/rejection_sample_stage.h"

#include <cstdlib>
#include <fstream>
#include <set>

#include "common/error.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/seed.h"
#include "learner/episodes.h"
#include "learner/evaluation.h"
#include "learner/prompt_encoding.h"
#include "learner/stage.h"
#include "policy/model_source.h"

namespace r1kit {

void RejectionSampleConfig::visit(ConfigVisitor& v) {
  v.field("num_prompts", num_prompts, {.min = 1.0});
  v.field("prompts_per_batch", prompts_per_batch, {.min = 1.0});
  v.field("max_prompt_length", max_prompt_length, {.min = 1.0});
  v.section("sampling", sampling);
  v.field("min_total_reward", min_total_reward);
  v.field("required_rewards", required_rewards);
  v.field("max_per_prompt", max_per_prompt, {.min = 0.0});
  v.field("deduplicate", deduplicate);
  v.field("keep_truncated", keep_truncated);
  v.field("output_file", output_file);
}

namespace {

bool accepted(const BatchScores& scores, size_t i, const std::vector<size_t>& required,
              double min_total) {
  if (scores.totals[i] < min_total - 1e-9) return false;
  for (size_t k : required) {
    if (!reward_is_correct(scores, i, k)) return false;
  }
  return true;
}

void run_rejection_sample_stage(const Recipe& recipe, RunDir& run_dir,
                                const TrainOptions& options) {
  recipe.require({"model", "environment", "rewards"});
  const RejectionSampleConfig& config = recipe.rejection_sample;
  if (options.resume) {
    throw_usage_error(
        "stage rejection_sample has no --resume: run it again (a fixed seed writes the same file)");
  }
  if (const char* world = std::getenv("WORLD_SIZE"); world && std::atoi(world) > 1) {
    throw_usage_error("the rejection_sample stage runs on one process (WORLD_SIZE is " +
                      std::string(world) + ")");
  }
  const auto seed = static_cast<uint64_t>(recipe.seed);
  seed_torch(seed);
  LoadedPolicy policy = load_policy(recipe.model, seed, recipe.source);
  config.sampling.validate(policy.model->config().vocab_size);
  const std::string env_source = recipe.source + ": environment";
  auto environment =
      make_environment(recipe.environment.name, recipe.environment.options, env_source);
  auto prompt_template =
      make_prompt_template(recipe.environment.prompt_template, recipe.environment.system_prompt,
                           env_source + ".prompt_template");
  RewardSet rewards(recipe.rewards, recipe.source);
  std::vector<size_t> required;
  for (const auto& name : config.required_rewards) {
    required.push_back(
        find_reward(rewards, name, "rejection_sample.required_rewards", recipe.source));
  }
  ThreadPool reward_pool(static_cast<size_t>(recipe.trainer.num_reward_workers));
  auto weights = std::make_shared<PolicyWeights>(policy.model);
  RolloutWorkers rollout(weights, policy.tokenizer,
                         static_cast<size_t>(recipe.trainer.num_rollout_workers),
                         {.max_batch_size = recipe.trainer.rollout_batch_size,
                          .compute_dtype = recipe.trainer.rollout_dtype});

  const std::filesystem::path output = config.output_file.empty()
                                           ? run_dir.path() / "sft.jsonl"
                                           : std::filesystem::path(config.output_file);
  if (output.has_parent_path()) std::filesystem::create_directories(output.parent_path());
  const std::filesystem::path partial = output.string() + ".partial";
  std::ofstream out(partial);
  if (!out) throw_io_error(partial.string() + ": cannot open for writing");

  // Multi-turn environments answer each turn, with the RL recipe's turn limit.
  const EpisodeOptions episode_options{
      .environment = environment->multi_turn() ? environment.get() : nullptr,
      .max_turns = recipe.grpo.max_turns,
      .context_length = policy.model->config().max_position_embeddings};
  std::mt19937_64 environment_rng = make_rng(seed, "environment");
  ProgressBar progress("rejection_sample", config.num_prompts);
  int64_t prompts_done = 0, samples = 0, accepted_samples = 0, written = 0, prompts_with_any = 0,
          truncated = 0;
  double reward_sum = 0.0;
  for (int64_t batch = 0; prompts_done < config.num_prompts; ++batch) {
    const int64_t count = std::min(config.prompts_per_batch, config.num_prompts - prompts_done);
    std::vector<Task> tasks = environment->next_tasks(static_cast<size_t>(count), environment_rng);
    std::vector<std::string> rendered;
    auto prompts =
        encode_prompts(tasks, *prompt_template, *policy.tokenizer, config.max_prompt_length,
                       &rendered, recipe.environment.add_special_tokens);
    SamplingParams params = config.sampling;
    params.seed = static_cast<int64_t>(
        make_rng(seed, "rejection_sample/batch-" + std::to_string(batch))() >> 1);
    std::vector<MultiTurnTrajectory> episodes = sample_episodes(
        rollout, tasks, prompts, *policy.tokenizer, params, episode_options, prompts_done);
    std::vector<Sample> batch_samples = episode_samples(tasks, rendered, episodes, prompts_done);
    BatchScores scores = score_episodes(rewards, reward_pool, batch_samples, episodes);
    std::vector<std::set<std::string>> kept(tasks.size());
    std::vector<int64_t> kept_count(tasks.size(), 0);
    int64_t batch_accepted = 0;
    for (size_t i = 0; i < episodes.size(); ++i) {
      const MultiTurnTrajectory& episode = episodes[i];
      const auto p = static_cast<size_t>(episode.prompt_index - prompts_done);
      reward_sum += scores.totals[i];
      const bool cut = episode.finish_reason == FinishReason::kLength;
      truncated += cut;
      if (!accepted(scores, i, required, config.min_total_reward) ||
          (cut && !config.keep_truncated))
        continue;
      ++batch_accepted;
      if (config.max_per_prompt > 0 && kept_count[p] >= config.max_per_prompt) continue;
      if (config.deduplicate && !kept[p].insert(episode.text).second) continue;
      ++kept_count[p];
      nlohmann::json line = {{"prompt", rendered[p]},
                             {"response", episode.text},
                             {"reward", scores.totals[i]},
                             {"reference", tasks[p].reference},
                             {"task", prompts_done + static_cast<int64_t>(p)}};
      out << line.dump() << "\n";
      ++written;
    }
    for (int64_t c : kept_count) prompts_with_any += c > 0;
    samples += static_cast<int64_t>(episodes.size());
    accepted_samples += batch_accepted;
    prompts_done += count;
    progress.update(prompts_done);
    nlohmann::json metrics = {
        {"step", batch + 1},
        {"prompts", prompts_done},
        {"acceptance_rate", static_cast<double>(batch_accepted) /
                                static_cast<double>(std::max<size_t>(episodes.size(), 1))},
        {"written", written}};
    for (const auto& [name, value] : scores.metrics()) metrics[name] = value;
    run_dir.log_metrics(metrics);
  }
  progress.finish();
  out.close();
  if (!out) throw_io_error(partial.string() + ": write failed");
  std::filesystem::rename(partial, output);

  const double rate =
      static_cast<double>(accepted_samples) / static_cast<double>(std::max<int64_t>(samples, 1));
  nlohmann::json summary = {
      {"prompts", prompts_done},
      {"samples", samples},
      {"accepted", accepted_samples},
      {"acceptance_rate", rate},
      {"prompts_with_accepted", prompts_with_any},
      {"written", written},
      {"truncated", truncated},
      {"mean_reward", reward_sum / static_cast<double>(std::max<int64_t>(samples, 1))},
      {"output", output.string()}};
  write_file_atomically(run_dir.path() / "summary.json", summary.dump(2) + "\n");
  log_info() << "rejection_sample: accepted " << accepted_samples << " of " << samples
             << " samples (" << static_cast<int>(rate * 1000) / 10.0 << "%), " << prompts_with_any
             << " of " << prompts_done << " tasks; wrote " << written << " examples to "
             << output.string();
  if (written == 0) {
    log_warning() << "rejection_sample: no completion was accepted; lower "
                     "rejection_sample.min_total_reward or raise "
                     "rejection_sample.sampling.n";
  }
}

}  // namespace

REGISTER_STAGE("rejection_sample", run_rejection_sample_stage);

}  // namespace r1kit
