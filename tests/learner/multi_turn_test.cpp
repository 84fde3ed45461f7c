// Multi-turn rollouts (docs/architecture.md, "One RL step" line 4): the driver appends the
// environment's observations after each model turn, keeps the sampled ids and
// log-probs, and marks the observation tokens, which leave the loss; the GRPO
// loop drives a multi-turn environment (a scripted one and `calculator`).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/run_dir.h"
#include "data/sft_data.h"
#include "learner/distributed.h"
#include "learner/grpo_config.h"
#include "learner/grpo_trainer.h"
#include "learner/micro_batch.h"
#include "learner/multi_turn_rollout.h"
#include "learner/policy_loss.h"
#include "learner/stage.h"
#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "policy/tokenizer.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

constexpr char kObservation[] = "=ab\n";

// Answers the first two model turns with kObservation; the third ends the
// episode with an environment reward of 0.5.
class ScriptedToolEnvironment : public GeneratedEnvironment {
 public:
  ScriptedToolEnvironment(const nlohmann::json&, const std::string&) : GeneratedEnvironment(4, 7) {}
  bool multi_turn() const override { return true; }
  StepResult step(const Task&, const std::vector<Turn>& history,
                  const std::string&) const override {
    int64_t model_turns = 1;
    for (const Turn& turn : history) model_turns += turn.observation ? 0 : 1;
    if (model_turns >= 3) return {.observation = "", .done = true, .reward = 0.5};
    return {.observation = kObservation, .done = false};
  }

 protected:
  Task generate(std::mt19937_64& rng) const override {
    Task task;
    task.prompt = std::to_string(uniform_int(rng, 0, 99)) + "?";
    task.reference = "7";
    return task;
  }
};
REGISTER_ENVIRONMENT("test_scripted_tool", ScriptedToolEnvironment);

// Every character of the alphabet ends a turn, so a model turn is one sampled character.
std::vector<std::string> every_character(const std::string& alphabet) {
  std::vector<std::string> stops;
  for (char c : alphabet) stops.emplace_back(1, c);
  return stops;
}

class MultiTurnRollout : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path folder = testing::write_tiny_policy(root_ / "model");
    tokenizer_ = std::make_shared<CharTokenizer>(testing::kTinyAlphabet);
    weights_ = std::make_shared<PolicyWeights>(load_pretrained(folder));
    rollout_ = std::make_unique<RolloutWorkers>(weights_, tokenizer_, 1,
                                                EngineOptions{.max_batch_size = 16});
    environment_ = make_environment("test_scripted_tool", nlohmann::json::object(), "test");
    std::mt19937_64 rng(1);
    tasks_ = environment_->next_tasks(2, rng);
    for (const Task& task : tasks_) prompts_.push_back(tokenizer_->encode(task.prompt));
    params_.n = 4;
    params_.seed = 5;
    params_.max_new_tokens = 64;
    params_.stop_strings = every_character(testing::kTinyAlphabet);
  }

  std::vector<MultiTurnTrajectory> run(const MultiTurnOptions& options) {
    return generate_multi_turn(*rollout_, *environment_, tasks_, prompts_, *tokenizer_, params_,
                               options);
  }

  const testing::TempFolder root_;
  std::shared_ptr<CharTokenizer> tokenizer_;
  std::shared_ptr<PolicyWeights> weights_;
  std::unique_ptr<RolloutWorkers> rollout_;
  std::unique_ptr<Environment> environment_;
  std::vector<Task> tasks_;
  std::vector<std::vector<int64_t>> prompts_;
  SamplingParams params_;
};

TEST_F(MultiTurnRollout, AppendsObservationTokensMarkedAndWithoutLogprobs) {
  auto trajectories = run({.max_completion_tokens = 64, .max_turns = 0, .context_length = 64});
  ASSERT_EQ(trajectories.size(), 8u);
  const std::vector<int64_t> observation = tokenizer_->encode(kObservation);
  int64_t complete = 0;
  for (const auto& trajectory : trajectories) {
    const size_t length = trajectory.token_ids.size();
    ASSERT_EQ(trajectory.logprobs.size(), length);
    ASSERT_EQ(trajectory.observation_mask.size(), length);
    // Runs of sampled tokens alternate with exact copies of the observation's ids.
    int64_t model_runs = 0, observation_runs = 0, sampled = 0;
    for (size_t t = 0; t < length;) {
      if (trajectory.observation_mask[t]) {
        ASSERT_LE(t + observation.size(), length);
        for (size_t k = 0; k < observation.size(); ++k) {
          EXPECT_EQ(trajectory.token_ids[t + k], observation[k]);
          EXPECT_EQ(trajectory.observation_mask[t + k], 1);
          EXPECT_EQ(trajectory.logprobs[t + k], 0.0f);
        }
        t += observation.size();
        ++observation_runs;
      } else {
        for (; t < length && !trajectory.observation_mask[t]; ++t, ++sampled)
          EXPECT_LT(trajectory.logprobs[t], 0.0f);
        ++model_runs;
      }
    }
    EXPECT_EQ(model_runs, trajectory.model_turns);
    EXPECT_EQ(sampled, trajectory.model_tokens);
    EXPECT_EQ(observation_runs,
              static_cast<int64_t>(trajectory.turns.size()) - trajectory.model_turns);
    EXPECT_EQ(trajectory.text, render_turns(trajectory.turns).text);
    if (trajectory.model_turns == 3) {
      ++complete;
      EXPECT_EQ(observation_runs, 2);
      ASSERT_TRUE(trajectory.environment_reward.has_value());
      EXPECT_EQ(*trajectory.environment_reward, 0.5);
      EXPECT_EQ(trajectory.finish_reason, FinishReason::kStop);
    }
  }
  EXPECT_GT(complete, 0) << "no trajectory reached the environment's third turn";
}

TEST_F(MultiTurnRollout, StopsAtTheCompletionBudgetAndTheTurnLimit) {
  // 1 sampled + 4 observation + 1 sampled = 6 tokens; a second observation does not fit in 7.
  for (const auto& trajectory :
       run({.max_completion_tokens = 7, .max_turns = 0, .context_length = 64})) {
    EXPECT_LE(trajectory.token_ids.size(), 7u);
    EXPECT_LE(trajectory.turns.size(), 3u);
    if (trajectory.model_turns == 2) EXPECT_EQ(trajectory.finish_reason, FinishReason::kLength);
  }
  int64_t two_turns = 0;
  for (const auto& trajectory :
       run({.max_completion_tokens = 64, .max_turns = 2, .context_length = 64})) {
    EXPECT_LE(trajectory.model_turns, 2);
    EXPECT_FALSE(trajectory.environment_reward.has_value());
    two_turns += trajectory.model_turns == 2;
  }
  EXPECT_GT(two_turns, 0);
}

// A tiny policy taught one two-turn episode by heart: it calls the tool, and
// after the calculator's answer writes the answer. Greedy decoding through the
// driver must reproduce it, the calculator computing the observation itself.
TEST(MultiTurnCalculator, AnswersAToolCallOfATaughtPolicy) {
  const std::string alphabet = "0123456789+-*=/<> .:?abcdeilmnorstuw\n";
  auto tokenizer = std::make_shared<CharTokenizer>(alphabet);
  const std::string prompt = "3*4?", call = "<tool>3*4</tool>", result = "<result>12</result>",
                    answer = "<answer>12</answer>";
  std::vector<int64_t> episode = tokenizer->encode(prompt + call + result + answer);
  episode.push_back(*tokenizer->eos_id());
  ModelConfig config = testing::tiny_model_config(tokenizer->vocab_size());
  config.eos_token_ids = {*tokenizer->eos_id()};
  Transformer model = make_random_transformer(config, /*seed=*/5);
  {
    torch::optim::AdamW adam(model->parameters(),
                             torch::optim::AdamWOptions(2e-2).weight_decay(0.0));
    at::Tensor tokens = at::tensor(episode, at::kLong).unsqueeze(0);  // (1, L)
    const int64_t steps = tokens.size(1) - 1;
    for (int step = 0; step < 80; ++step) {
      adam.zero_grad();
      at::Tensor logits =
          model->forward(tokens, at::ones_like(tokens)).narrow(1, 0, steps);  // (1, L-1, V)
      at::Tensor loss = at::cross_entropy_loss(logits.reshape({steps, -1}),
                                               tokens.narrow(1, 1, steps).reshape({-1}));
      loss.backward();
      adam.step();
    }
  }
  auto weights = std::make_shared<PolicyWeights>(model);
  RolloutWorkers rollout(weights, tokenizer, 1);
  auto calculator = make_environment("calculator", nlohmann::json::object(), "test");
  Task task;
  task.prompt = prompt;
  SamplingParams greedy;
  greedy.temperature = 0.0;
  greedy.max_new_tokens = 60;
  greedy.stop_strings = {"</tool>"};
  auto trajectories = generate_multi_turn(
      rollout, *calculator, {task}, {tokenizer->encode(prompt)}, *tokenizer, greedy,
      {.max_completion_tokens = 60, .max_turns = 0, .context_length = 64});
  ASSERT_EQ(trajectories.size(), 1u);
  const MultiTurnTrajectory& trajectory = trajectories[0];
  ASSERT_EQ(trajectory.turns.size(), 3u) << trajectory.text;
  EXPECT_EQ(trajectory.turns[0].text, call);
  EXPECT_TRUE(trajectory.turns[1].observation);
  EXPECT_EQ(trajectory.turns[1].text, result);
  EXPECT_EQ(trajectory.turns[2].text, answer);
  EXPECT_EQ(trajectory.finish_reason, FinishReason::kStop);
  // The ids: the call as sampled, the calculator's answer tokenized and marked, the answer, <eos>.
  std::vector<int64_t> expected(episode.begin() + static_cast<int64_t>(prompt.size()),
                                episode.end());
  EXPECT_EQ(trajectory.token_ids, expected);
  std::vector<uint8_t> mask(expected.size(), 0);
  std::fill(mask.begin() + static_cast<int64_t>(call.size()),
            mask.begin() + static_cast<int64_t>(call.size() + result.size()), 1);
  EXPECT_EQ(trajectory.observation_mask, mask);
}

TEST(MultiTurnLoss, ObservationTokensAreOutOfTheLossMaskAndGetNoGradient) {
  TrainingSample sample;
  sample.tokens = {5, 6, 7, 10, 11, 12, 13, 14, 15};  // prompt of 3, completion of 6
  sample.prompt_length = 3;
  sample.old_logprobs = {-1.0f, 0.0f, 0.0f, -2.0f, -1.5f, 0.0f};
  sample.observation_mask = {0, 1, 1, 0, 0, 1};
  sample.advantage = 1.0f;
  MicroBatch batch = make_micro_batch({sample}, 0, 1);
  // Targets 1..8: the completion's targets sit at positions 2..7.
  at::Tensor expected_loss_mask =
      at::tensor({0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f}).view({1, 8});
  EXPECT_TRUE(at::equal(batch.loss_mask, expected_loss_mask)) << batch.loss_mask;
  EXPECT_TRUE(at::equal(batch.completion_mask, expected_loss_mask))
      << "GAE must skip observations too";
  sample.in_loss = false;  // a masked truncation: out of the loss, still in GAE's mask
  MicroBatch out_of_loss = make_micro_batch({sample}, 0, 1);
  EXPECT_EQ(out_of_loss.loss_mask.sum().item<float>(), 0.0f);
  EXPECT_TRUE(at::equal(out_of_loss.completion_mask, expected_loss_mask));
  sample.in_loss = true;

  GrpoConfig config;
  PolicyLossInputs inputs;
  inputs.logprobs = (batch.old_logprobs + 0.1).requires_grad_(true);  // (1, 8)
  inputs.old_logprobs = batch.old_logprobs;
  inputs.advantages = batch.advantages;
  inputs.mask = batch.loss_mask;
  PolicyLossOutput output = policy_loss(inputs, config, count_loss_normalizer(batch.loss_mask, 6));
  output.loss.backward();
  at::Tensor gradient = inputs.logprobs.grad()[0];
  for (int64_t t = 0; t < 8; ++t) {
    if (expected_loss_mask[0][t].item<float>() > 0) {
      EXPECT_NE(gradient[t].item<float>(), 0.0f) << t;
    } else {
      EXPECT_EQ(gradient[t].item<float>(), 0.0f) << t;
    }
  }
  // An observation's log-prob changing leaves the loss as it is.
  PolicyLossInputs moved = inputs;
  moved.logprobs = inputs.logprobs.detach().clone();
  moved.logprobs[0][3] += 5.0;
  moved.logprobs[0][4] -= 5.0;
  PolicyLossOutput moved_output =
      policy_loss(moved, config, count_loss_normalizer(batch.loss_mask, 6));
  EXPECT_EQ(moved_output.loss.item<double>(), output.loss.item<double>());
}

nlohmann::json multi_turn_recipe(const fs::path& model, const fs::path& run,
                                 const std::string& alphabet) {
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, run);
  recipe["grpo"]["max_completion_length"] = 16;
  recipe["grpo"]["num_generations"] = 4;
  recipe["trainer"]["max_steps"] = 3;
  recipe["trainer"]["prompts_per_step"] = 2;
  recipe["trainer"]["eval_samples"] = 2;
  return recipe;
}

TEST(MultiTurnLoop, GrpoTrainsOnAScriptedToolEnvironment) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = multi_turn_recipe(model, root / "run", testing::kTinyAlphabet);
  json["environment"] = {{"name", "test_scripted_tool"}, {"prompt_template", "plain"}};
  json["grpo"]["stop_strings"] = every_character(testing::kTinyAlphabet);
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  const auto initial = trainer.policy()->named_parameters()["model.norm.weight"].clone();
  trainer.train(/*resume=*/false);

  int64_t steps = 0, evaluations = 0;
  for (const auto& line : read_jsonl(root / "run" / "metrics.jsonl")) {
    if (line.contains("eval/mean_length")) {
      // Evaluation runs the episodes too: a one-turn greedy answer would be 1 token long.
      ++evaluations;
      EXPECT_GT(line["eval/mean_length"].get<double>(), 1.5) << line.dump();
      EXPECT_GE(line["eval/reward"].get<double>(), 0.5) << line.dump();
    }
    if (!line.contains("reward")) continue;
    ++steps;
    EXPECT_GT(line["multi_turn/mean_turns"].get<double>(), 1.0) << line.dump();
    EXPECT_GT(line["multi_turn/mean_observation_tokens"].get<double>(), 0.0) << line.dump();
    ASSERT_TRUE(line.contains("rewards/environment/mean")) << line.dump();
    EXPECT_EQ(line["rewards/environment/mean"].get<double>(), 0.5);
  }
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(evaluations, 2);  // at the start and the end
  bool logged_observation = false;
  for (const auto& line : read_jsonl(root / "run" / "samples.jsonl")) {
    logged_observation = logged_observation || line["completion"].get<std::string>().find(
                                                   kObservation) != std::string::npos;
  }
  EXPECT_TRUE(logged_observation);
  EXPECT_FALSE(at::equal(initial, trainer.policy()->named_parameters()["model.norm.weight"]));
}

// PPO over multi-turn trajectories: GAE skips the observation tokens (the
// completion mask excludes them) and the critic trains on the sampled ones.
TEST(MultiTurnLoop, PpoRunsOnAScriptedToolEnvironment) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = multi_turn_recipe(model, root / "run", testing::kTinyAlphabet);
  json["stage"] = "ppo";
  json["grpo"]["adv_estimator"] = "gae";
  json["environment"] = {{"name", "test_scripted_tool"}, {"prompt_template", "plain"}};
  json["grpo"]["stop_strings"] = every_character(testing::kTinyAlphabet);
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  for (int64_t step = 1; step <= 2; ++step) {
    nlohmann::json line = trainer.step(step);
    EXPECT_GT(line["multi_turn/mean_observation_tokens"].get<double>(), 0.0) << line.dump();
    EXPECT_TRUE(std::isfinite(line["critic/vf_loss"].get<double>())) << line.dump();
    EXPECT_GT(line["grad_norm"].get<double>(), 0.0) << line.dump();
  }
}

TEST(MultiTurnLoop, CalculatorRecipeRunsEndToEnd) {
  const std::string alphabet = "0123456789+-*=/<> .:?abcdeilmnorstuw\n";
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model", /*seed=*/3, alphabet);
  nlohmann::json json = multi_turn_recipe(model, root / "run", alphabet);
  json["environment"] = {{"name", "calculator"},
                         {"options", {{"digits", 1}, {"terms", 2}, {"eval_size", 4}}},
                         {"prompt_template", "plain"}};
  json["grpo"]["stop_strings"] = {"</tool>"};
  json["rewards"] = {
      {{"name", "regex_match"}, {"options", {{"pattern", "<tool>"}, {"mode", "count"}}}}};
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  trainer.train(/*resume=*/false);
  int64_t steps = 0;
  for (const auto& line : read_jsonl(root / "run" / "metrics.jsonl")) {
    if (!line.contains("reward")) continue;
    ++steps;
    EXPECT_GE(line["multi_turn/mean_turns"].get<double>(), 1.0) << line.dump();
  }
  EXPECT_EQ(steps, 3);
  EXPECT_TRUE(fs::exists(root / "run" / "final" / "model.safetensors"));
}

// rejection_sample over a multi-turn environment: each written response is a
// whole episode, the model's turns with the environment's observations between
// them as text (up to two here; an end-of-sequence token ends an episode
// early), and the file loads as SFT data.
TEST(MultiTurnRejectionSample, WritesWholeEpisodesWithTheirObservations) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["stage"] = "rejection_sample";
  json.erase("grpo");
  json.erase("optimizer");
  json["environment"] = {{"name", "test_scripted_tool"}, {"prompt_template", "plain"}};
  json["rewards"] = {
      {{"name", "regex_match"}, {"options", {{"pattern", "=ab"}, {"mode", "search"}}}}};
  json["rejection_sample"] = {{"num_prompts", 4},
                              {"prompts_per_batch", 4},
                              {"sampling",
                               {{"n", 4},
                                {"max_new_tokens", 16},
                                {"temperature", 1.0},
                                {"stop_strings", every_character(testing::kTinyAlphabet)}}},
                              {"min_total_reward", 1.0},
                              {"max_per_prompt", 0},
                              {"deduplicate", false}};
  Recipe recipe = testing::write_and_load_recipe(json, root / "recipe.json");
  RunDir run_dir(recipe.output_dir);
  find_stage(recipe.stage)(recipe, run_dir, {});

  auto lines = read_jsonl(root / "run" / "sft.jsonl");
  std::ifstream summary_file(root / "run" / "summary.json");
  const auto summary = nlohmann::json::parse(summary_file);
  EXPECT_EQ(summary["samples"], 16);
  // An episode whose first turn ends the sequence shows no observation and
  // is not accepted; the others are.
  EXPECT_GE(lines.size(), 12u);
  EXPECT_EQ(summary["written"].get<size_t>(), lines.size());
  size_t whole_episodes = 0;  // three model turns, two observations
  for (const auto& line : lines) {
    const std::string response = line["response"];
    const size_t first = response.find(kObservation);
    ASSERT_NE(first, std::string::npos) << response;
    EXPECT_GT(first, 0u) << "a model turn comes first: " << response;
    whole_episodes += response.find(kObservation, first + 1) != std::string::npos;
    EXPECT_GE(line["reward"].get<double>(), 1.0);
  }
  EXPECT_GT(whole_episodes, 0u);
  auto tokenizer = load_tokenizer(model.string());
  SftDataset data =
      load_sft_jsonl((root / "run" / "sft.jsonl").string(), *tokenizer, {.strict = true});
  EXPECT_EQ(data.examples.size(), lines.size());
}

}  // namespace
}  // namespace r1kit
