#include "learner/rollout_collector.h"

#include "common/elapsed.h"
#include "common/seed.h"
#include "learner/episodes.h"
#include "learner/prompt_encoding.h"
#include "learner/reward_tally.h"
#include "learner/sampling_recipe.h"

namespace r1kit {
namespace {

// The sampling seed of one generation round: fixed by run seed, step and round.
int64_t round_seed(int64_t seed, int64_t step, int64_t round) {
  auto rng = make_rng(static_cast<uint64_t>(seed),
                      "rollout/" + std::to_string(step) + "/" + std::to_string(round));
  return static_cast<int64_t>(rng() >> 1);
}

}  // namespace

// One generation round: its tasks, their prompts and the scored episodes.
struct RolloutCollector::Round {
  std::vector<Task> tasks;                    // this rank's
  std::vector<std::vector<int64_t>> prompts;  // their encodings
  std::vector<std::string> rendered;          // their texts
  std::vector<MultiTurnTrajectory> trajectories;
  BatchScores scores;
  AdvantageRound advantage;
};

// Completion lengths, truncations and turns over every round of a step.
struct RolloutCollector::CompletionTally {
  int64_t seen = 0, truncated = 0, max_length = 0, generated_tokens = 0;
  double total_length = 0, model_turns = 0, observation_tokens = 0;

  void add(const MultiTurnTrajectory& trajectory) {
    const int64_t length = static_cast<int64_t>(trajectory.token_ids.size());
    generated_tokens += trajectory.model_tokens;
    total_length += static_cast<double>(length);
    max_length = std::max(max_length, length);
    model_turns += static_cast<double>(trajectory.model_turns);
    observation_tokens += static_cast<double>(length - trajectory.model_tokens);
    ++seen;
    truncated += trajectory.finish_reason == FinishReason::kLength;
  }

  void write(StepMetrics& metrics, bool multi_turn) const {
    const int64_t count = std::max<int64_t>(seen, 1);
    metrics.set("completions/mean_length", total_length / count);
    metrics.set("completions/max_length", static_cast<double>(max_length));
    metrics.set("completions/clipped_ratio", static_cast<double>(truncated) / count);
    metrics.set("num_tokens", static_cast<double>(generated_tokens));
    if (multi_turn) {
      metrics.set("multi_turn/mean_turns", model_turns / count);
      metrics.set("multi_turn/mean_observation_tokens", observation_tokens / count);
    }
  }
};

std::vector<nlohmann::json> RolloutBatch::logged_completions() const {
  std::vector<nlohmann::json> lines = logged;
  for (size_t k = 0; k < lines.size(); ++k)
    lines[k]["advantage"] = samples[logged_samples[k]].advantage;
  return lines;
}

RolloutCollector::RolloutCollector(const Recipe& recipe, Distributed& distributed,
                                   RolloutWorkers& rollout, Environment& environment,
                                   const PromptTemplate& prompt_template,
                                   const Tokenizer& tokenizer, const RewardSet& rewards,
                                   ThreadPool& reward_pool, size_t accuracy_reward,
                                   int64_t context_length)
    : recipe_(recipe),
      distributed_(distributed),
      rollout_(rollout),
      environment_(environment),
      prompt_template_(prompt_template),
      tokenizer_(tokenizer),
      rewards_(rewards),
      reward_pool_(reward_pool),
      accuracy_reward_(accuracy_reward),
      prompts_local_(recipe.trainer.prompts_per_step / distributed.world_size()),
      first_local_(prompts_local_ * distributed.rank()),
      context_length_(context_length),
      environment_rng_(make_rng(static_cast<uint64_t>(recipe.seed), "environment")) {}

RolloutBatch RolloutCollector::collect(int64_t step, StepMetrics& metrics) {
  const GrpoConfig& grpo = recipe_.grpo;
  const int64_t group = grpo.num_generations;
  RolloutBatch batch;
  double generate_seconds = 0, score_seconds = 0;
  std::map<std::string, double> reward_sums;
  CompletionTally completions;
  RewardTally tally(rewards_.size());
  std::vector<float> all_rewards;  // every round's, every rank's
  int64_t rounds = 0;
  while (true) {
    auto start = SteadyClock::now();
    Round round = sample_round(step, rounds);
    generate_seconds += seconds_since(start);
    start = SteadyClock::now();
    std::vector<Sample> samples =
        episode_samples(round.tasks, round.rendered, round.trajectories, first_local_);
    round.scores = score_episodes(rewards_, reward_pool_, samples, round.trajectories);
    score_seconds += seconds_since(start);
    for (const auto& [name, value] : round.scores.metrics()) reward_sums[name] += value;
    tally.add(round.scores, round.trajectories, accuracy_reward_);
    // Advantages need the rewards of every rank (batch scaling).
    at::Tensor rewards = at::tensor(
        std::vector<float>(round.scores.totals.begin(), round.scores.totals.end()), at::kFloat);
    round.advantage.rewards = distributed_.all_gather(rewards);
    all_rewards.insert(all_rewards.end(), round.advantage.rewards.data_ptr<float>(),
                       round.advantage.rewards.data_ptr<float>() + round.advantage.rewards.numel());
    keep_round(round, step, batch, completions);
    batch.rounds.push_back(std::move(round.advantage));
    ++rounds;
    if (!grpo.filter_groups.enable) break;
    // Dynamic sampling (DAPO): another round while any rank lacks full groups.
    at::Tensor missing = at::tensor(
        {static_cast<float>(prompts_local_ * group - static_cast<int64_t>(batch.samples.size()))});
    distributed_.all_reduce_sum(missing);
    if (missing.item<float>() <= 0) break;
    if (grpo.filter_groups.max_num_gen_batches > 0 &&
        rounds >= grpo.filter_groups.max_num_gen_batches)
      break;
  }
  RewardGroupStats stats = reward_group_stats(at::tensor(all_rewards, at::kFloat), group);
  metrics.set("reward", stats.reward);
  metrics.set("reward_std", stats.reward_std);
  metrics.set("frac_reward_zero_std", stats.frac_reward_zero_std);
  completions.write(metrics, environment_.multi_turn());
  metrics.set("generation_rounds", static_cast<double>(rounds));
  metrics.set("time/generate", generate_seconds);
  metrics.set("time/score", score_seconds);
  // Reward components stay this rank's (their names vary by sample); the
  // per-reward statistics and accuracy below cover every rank.
  for (const auto& [name, sum] : reward_sums) metrics.set(name, sum / rounds);
  tally.all_reduce(distributed_);
  tally.write(metrics);
  tally.check_failures(rewards_, step);
  return batch;
}

RolloutCollector::Round RolloutCollector::sample_round(int64_t step, int64_t round_index) {
  const GrpoConfig& grpo = recipe_.grpo;
  Round round;
  // Every rank draws the same global tasks and keeps its own slice, so the
  // environment's position never depends on the number of ranks.
  std::vector<Task> tasks =
      environment_.next_tasks(recipe_.trainer.prompts_per_step, environment_rng_);
  round.tasks.assign(tasks.begin() + first_local_, tasks.begin() + first_local_ + prompts_local_);
  round.prompts = encode_prompts(round.tasks, prompt_template_, tokenizer_, grpo.max_prompt_length,
                                 &round.rendered, recipe_.environment.add_special_tokens);
  SamplingParams params = rollout_sampling_params(grpo);
  params.n = grpo.num_generations;
  params.seed = round_seed(recipe_.seed, step, round_index);
  const EpisodeOptions options{.environment = environment_.multi_turn() ? &environment_ : nullptr,
                               .max_turns = grpo.max_turns,
                               .context_length = context_length_};
  round.trajectories = sample_episodes(rollout_, round.tasks, round.prompts, tokenizer_, params,
                                       options, first_local_);
  return round;
}

void RolloutCollector::keep_round(Round& round, int64_t step, RolloutBatch& batch,
                                  CompletionTally& completions) {
  const GrpoConfig& grpo = recipe_.grpo;
  const int64_t group = grpo.num_generations;
  const int64_t full = prompts_local_ * group;
  AdvantageRound& advantage = round.advantage;
  advantage.group_size = group;
  advantage.first = first_local_ * group;
  advantage.begin = batch.samples.size();
  at::Tensor keep_group = grpo.filter_groups.enable
                              ? groups_with_reward_spread(
                                    round.advantage.rewards.narrow(0, advantage.first, full), group)
                              : at::ones({prompts_local_}, at::kBool);
  for (int64_t p = 0; p < prompts_local_; ++p) {
    const bool keep =
        keep_group[p].item<bool>() && static_cast<int64_t>(batch.samples.size()) < full;
    for (int64_t s = 0; s < group; ++s) {
      const int64_t i = p * group + s;
      MultiTurnTrajectory& trajectory = round.trajectories[i];
      completions.add(trajectory);
      if (!keep) continue;
      TrainingSample sample;
      sample.tokens = round.prompts[p];
      sample.prompt_length = static_cast<int64_t>(round.prompts[p].size());
      sample.tokens.insert(sample.tokens.end(), trajectory.token_ids.begin(),
                           trajectory.token_ids.end());
      sample.old_logprobs = std::move(trajectory.logprobs);
      if (static_cast<int64_t>(trajectory.token_ids.size()) > trajectory.model_tokens)
        sample.observation_mask = std::move(trajectory.observation_mask);
      sample.in_loss =
          !(grpo.mask_truncated_completions && trajectory.finish_reason == FinishReason::kLength);
      advantage.kept.push_back(i);
      batch.samples.push_back(std::move(sample));
      if (static_cast<int64_t>(batch.logged.size()) < recipe_.trainer.log_completions &&
          distributed_.is_main()) {
        nlohmann::json line = {{"step", step},
                               {"prompt", round.rendered[p]},
                               {"completion", trajectory.text},
                               {"reference", round.tasks[p].reference},
                               {"reward", round.scores.totals[i]},
                               {"finish_reason", finish_reason_name(trajectory.finish_reason)}};
        if (environment_.multi_turn()) line["turns"] = trajectory.model_turns;
        batch.logged.push_back(std::move(line));
        batch.logged_samples.push_back(batch.samples.size() - 1);
      }
    }
  }
}

}  // namespace r1kit
