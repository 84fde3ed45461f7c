// The `sft` stage: supervised fine-tuning (R1's cold start) on prompt/response
// or chat JSONL (data/sft_data.h) with the loss on response tokens only,
// micro-batches padded within a token budget, eval loss on a held-out split,
// early stopping on it (Hugging Face's EarlyStoppingCallback), checkpoints that
// resume at the same batch, and the final model in <output_dir>/final.
// One process: the stage does not shard across ranks yet.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "common/error.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/seed.h"
#include "data/sft_data.h"
#include "learner/lm_loss.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"
#include "policy/checkpoint.h"

namespace r1kit {
namespace {

// The batches of `epoch`: a fixed function of the seed and the epoch, so a
// resumed run rebuilds the same plan.
std::vector<std::vector<size_t>> epoch_plan(const std::vector<SftExample>& examples,
                                            const SftConfig& config, uint64_t seed, int64_t epoch) {
  std::mt19937_64 rng = make_rng(seed, "sft/epoch-" + std::to_string(epoch));
  return plan_sft_batches(examples, config.max_tokens_per_batch, &rng);
}

// Token-mean loss of the held-out examples.
double sft_eval_loss(Transformer& model, const std::vector<SftExample>& eval,
                     const SftConfig& config, int64_t pad_id, at::Device device) {
  at::NoGradGuard no_grad;
  model->eval();
  double sum = 0.0;
  int64_t tokens = 0;
  for (const auto& rows : plan_sft_batches(eval, config.max_tokens_per_batch, nullptr)) {
    SftBatch batch = collate_sft(eval, rows, pad_id);
    at::Tensor input = batch.tokens.to(device), mask = batch.attention_mask.to(device);
    LmLoss loss = causal_lm_loss(model->forward(input, mask), input, batch.loss_mask.to(device));
    sum += loss.sum.item<double>();
    tokens += loss.tokens;
  }
  model->train();
  return sum / static_cast<double>(std::max<int64_t>(tokens, 1));
}

void run_sft_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  recipe.require({"model", "sft"});
  const SftConfig& config = recipe.sft;
  if (const char* world = std::getenv("WORLD_SIZE"); world && std::atoi(world) > 1) {
    throw_usage_error("the sft stage runs on one process (WORLD_SIZE is " + std::string(world) +
                      ")");
  }
  const auto seed = static_cast<uint64_t>(recipe.seed);
  seed_torch(seed);
  LoadedPolicy policy = load_policy(recipe.model, seed, recipe.source);
  Transformer& model = policy.model;
  const Tokenizer& tokenizer = *policy.tokenizer;
  const int64_t pad_id = tokenizer.pad_id().value_or(tokenizer.eos_id().value_or(0));

  SftDataOptions data_options{
      .max_length = config.max_length, .truncation = config.truncation, .strict = config.strict};
  SftDataset train = load_sft_jsonl(config.train_file, tokenizer, data_options);
  std::vector<SftExample> eval;
  if (!config.eval_file.empty()) {
    eval = load_sft_jsonl(config.eval_file, tokenizer, data_options).examples;
    if (static_cast<int64_t>(eval.size()) > config.max_eval_examples)
      eval.resize(config.max_eval_examples);
  } else if (config.eval_fraction > 0) {
    eval = split_off_eval(train, config.eval_fraction, config.max_eval_examples);
  }
  if (train.examples.empty())
    throw_data_error(config.train_file + ": every example went to the eval split");
  log_info() << "sft: " << train.examples.size() << " training and " << eval.size()
             << " eval examples (" << train.skipped.size() << " lines skipped, " << train.truncated
             << " truncated)";

  const auto batches_per_epoch =
      static_cast<int64_t>(epoch_plan(train.examples, config, seed, 0).size());
  const int64_t steps_per_epoch = (batches_per_epoch + config.gradient_accumulation_steps - 1) /
                                  config.gradient_accumulation_steps;
  const int64_t total_steps =
      config.max_steps > 0 ? config.max_steps : config.num_train_epochs * steps_per_epoch;
  Optimizer optimizer(model->decay_parameters(), model->no_decay_parameters(), recipe.optimizer,
                      total_steps);

  int64_t done = 0, epoch = 0, next_batch = 0, evals_without_gain = 0;
  double best_eval = std::numeric_limits<double>::infinity();
  if (options.resume) {
    if (auto folder = latest_run_checkpoint(run_dir.path())) {
      nlohmann::json state = read_json_file((*folder / "trainer_state.json").string());
      done = state.at("step").get<int64_t>();
      epoch = state.at("epoch").get<int64_t>();
      next_batch = state.at("next_batch").get<int64_t>();
      best_eval = state.at("best_eval_loss").is_null() ? best_eval
                                                       : state.at("best_eval_loss").get<double>();
      evals_without_gain = state.at("evals_without_gain").get<int64_t>();
      load_weights_into(model, *folder / "model");
      optimizer.load(*folder / "optimizer");
      restore_torch_rng(state.at("torch_rng").get<std::string>());
      log_info() << "resumed from " << folder->string() << " at step " << done;
    } else {
      log_warning() << "--resume: no checkpoint in " << run_dir.path().string()
                    << "; starting from step 0";
    }
  }
  auto save_checkpoint = [&](int64_t step) {
    RunCheckpoint checkpoint;
    checkpoint.policy = model;
    checkpoint.tokenizer = policy.tokenizer.get();
    checkpoint.optimizer = &optimizer;
    checkpoint.state = {
        {"step", step},
        {"epoch", epoch},
        {"next_batch", next_batch},
        {"best_eval_loss", std::isfinite(best_eval) ? nlohmann::json(best_eval) : nlohmann::json()},
        {"evals_without_gain", evals_without_gain},
        {"torch_rng", save_torch_rng()},
        {"recipe", write_config(const_cast<Recipe&>(recipe))}};
    save_run_checkpoint(run_dir.path(), checkpoint, config.save_total_limit);
  };

  model->train();
  std::vector<std::vector<size_t>> plan = epoch_plan(train.examples, config, seed, epoch);
  ProgressBar progress("sft", total_steps);
  progress.update(done);
  bool stop = false;
  for (int64_t step = done + 1; step <= total_steps && !stop; ++step) {
    auto start = std::chrono::steady_clock::now();
    if (next_batch >= static_cast<int64_t>(plan.size())) {
      plan = epoch_plan(train.examples, config, seed, ++epoch);
      next_batch = 0;
    }
    // The step's micro-batches (never across an epoch end); the loss is the
    // mean over all their response tokens, as one large batch would give.
    std::vector<SftBatch> micro;
    int64_t step_tokens = 0, real_tokens = 0;
    for (int64_t m = 0;
         m < config.gradient_accumulation_steps && next_batch < static_cast<int64_t>(plan.size());
         ++m) {
      micro.push_back(collate_sft(train.examples, plan[next_batch++], pad_id));
      step_tokens += micro.back().loss_tokens;
      real_tokens += micro.back().attention_mask.sum().item<int64_t>();
    }
    double loss_sum = 0.0;
    for (const SftBatch& batch : micro) {
      at::Tensor input = batch.tokens.to(policy.device),
                 mask = batch.attention_mask.to(policy.device);
      LmLoss loss =
          causal_lm_loss(model->forward(input, mask), input, batch.loss_mask.to(policy.device));
      (loss.sum / static_cast<double>(std::max<int64_t>(step_tokens, 1))).backward();
      loss_sum += loss.sum.item<double>();
    }
    OptimizerStepStats stats = optimizer.step();
    optimizer.zero_grad();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json line = {
        {"step", step},
        {"loss", loss_sum / static_cast<double>(std::max<int64_t>(step_tokens, 1))},
        {"learning_rate", stats.learning_rate},
        {"grad_norm", stats.grad_norm},
        {"tokens_per_second", static_cast<double>(real_tokens) / std::max(seconds, 1e-9)},
        {"epoch", static_cast<double>(epoch) + static_cast<double>(next_batch) / plan.size()}};
    if (stats.skipped) line["skipped"] = true;
    bool last = step == total_steps;
    bool epoch_end = next_batch >= static_cast<int64_t>(plan.size());
    if (!eval.empty() &&
        ((config.eval_steps > 0 ? step % config.eval_steps == 0 : epoch_end) || last)) {
      double eval_loss = sft_eval_loss(model, eval, config, pad_id, policy.device);
      line["eval_loss"] = eval_loss;
      if (eval_loss < best_eval - config.early_stopping_threshold) {
        best_eval = eval_loss;
        evals_without_gain = 0;
      } else if (config.early_stopping_patience > 0 &&
                 ++evals_without_gain >= config.early_stopping_patience) {
        log_info() << "sft: early stop at step " << step << ": eval loss " << eval_loss << ", best "
                   << best_eval;
        stop = true;
      }
    }
    run_dir.log_metrics(line);
    char status[96];
    std::snprintf(status, sizeof status, "loss %.4f", line["loss"].get<double>());
    progress.update(step, status);
    if ((config.save_steps > 0 && step % config.save_steps == 0) || last || stop)
      save_checkpoint(step);
  }
  progress.finish();
  std::filesystem::path final_folder = run_dir.path() / "final";
  save_pretrained(model, final_folder);
  policy.tokenizer->save_folder(final_folder);
  log_info() << "final model written to " << final_folder.string();
}

}  // namespace

REGISTER_STAGE("sft", run_sft_stage);

}  // namespace r1kit
