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
    LmLoss loss = causal_lm_loss(*model, input, mask, batch.loss_mask.to(device));
    sum += loss.sum.item<double>();
    tokens += loss.tokens;
  }
  model->train();
  return sum / static_cast<double>(std::max<int64_t>(tokens, 1));
}

// Where a run is: what a checkpoint saves beyond the weights and optimiser.
struct SftProgress {
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t next_batch = 0;  // in the epoch's plan
  double best_eval = std::numeric_limits<double>::infinity();
  int64_t evals_without_gain = 0;
};

// One fine-tuning run: the policy, its data and optimiser.
class SftRun {
 public:
  SftRun(const Recipe& recipe, RunDir& run_dir)
      : recipe_(recipe),
        config_(recipe.sft),
        run_dir_(run_dir),
        seed_(static_cast<uint64_t>(recipe.seed)) {
    seed_torch(seed_);
    policy_ = load_policy(recipe.model, seed_, recipe.source);
    policy_.model->set_gradient_checkpointing(config_.gradient_checkpointing);
    const Tokenizer& tokenizer = *policy_.tokenizer;
    pad_id_ = tokenizer.pad_id().value_or(tokenizer.eos_id().value_or(0));
    load_data();
    const auto batches_per_epoch =
        static_cast<int64_t>(epoch_plan(train_.examples, config_, seed_, 0).size());
    const int64_t steps_per_epoch = (batches_per_epoch + config_.gradient_accumulation_steps - 1) /
                                    config_.gradient_accumulation_steps;
    total_steps_ =
        config_.max_steps > 0 ? config_.max_steps : config_.num_train_epochs * steps_per_epoch;
    optimizer_ = std::make_unique<Optimizer>(policy_.model->decay_parameters(),
                                             policy_.model->no_decay_parameters(), recipe.optimizer,
                                             total_steps_);
  }

  void train(bool resume) {
    if (resume) restore();
    policy_.model->train();
    plan_ = epoch_plan(train_.examples, config_, seed_, progress_.epoch);
    ProgressBar progress("sft", total_steps_);
    progress.update(progress_.step);
    bool stop = false;
    for (int64_t step = progress_.step + 1; step <= total_steps_ && !stop; ++step) {
      nlohmann::json line = train_step(step);
      const bool last = step == total_steps_;
      const bool epoch_end = progress_.next_batch >= static_cast<int64_t>(plan_.size());
      if (!eval_.empty() &&
          ((config_.eval_steps > 0 ? step % config_.eval_steps == 0 : epoch_end) || last)) {
        stop = evaluate(step, line);
      }
      run_dir_.log_metrics(line);
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f", line["loss"].get<double>());
      progress.update(step, status);
      if ((config_.save_steps > 0 && step % config_.save_steps == 0) || last || stop)
        save_checkpoint(step);
    }
    progress.finish();
    auto folder = save_final_model(run_dir_.path(), policy_.model, *policy_.tokenizer);
    log_info() << "final model written to " << folder.string();
  }

 private:
  // The training examples and the held-out ones (a file, or a share of the training file).
  void load_data() {
    SftDataOptions data_options{.max_length = config_.max_length,
                                .truncation = config_.truncation,
                                .strict = config_.strict,
                                .add_special_tokens = config_.add_special_tokens};
    train_ = load_sft_jsonl(config_.train_file, *policy_.tokenizer, data_options);
    if (!config_.eval_file.empty()) {
      eval_ = load_sft_jsonl(config_.eval_file, *policy_.tokenizer, data_options).examples;
      if (static_cast<int64_t>(eval_.size()) > config_.max_eval_examples)
        eval_.resize(config_.max_eval_examples);
    } else if (config_.eval_fraction > 0) {
      eval_ = split_off_eval(train_, config_.eval_fraction, config_.max_eval_examples);
    }
    if (train_.examples.empty())
      throw_data_error(config_.train_file + ": every example went to the eval split");
    log_info() << "sft: " << train_.examples.size() << " training and " << eval_.size()
               << " eval examples (" << train_.skipped.size() << " lines skipped, "
               << train_.truncated << " truncated)";
  }

  void restore() {
    auto folder = resume_checkpoint(run_dir_.path());
    if (!folder) return;
    nlohmann::json state = read_trainer_state(*folder);
    progress_.step = state.at("step").get<int64_t>();
    progress_.epoch = state.at("epoch").get<int64_t>();
    progress_.next_batch = state.at("next_batch").get<int64_t>();
    if (!state.at("best_eval_loss").is_null())
      progress_.best_eval = state.at("best_eval_loss").get<double>();
    progress_.evals_without_gain = state.at("evals_without_gain").get<int64_t>();
    load_weights_into(policy_.model, *folder / "model");
    optimizer_->load(*folder / "optimizer");
    restore_torch_rng(state.at("torch_rng").get<std::string>());
    log_info() << "resumed from " << folder->string() << " at step " << progress_.step;
  }

  void save_checkpoint(int64_t step) {
    RunCheckpoint checkpoint;
    checkpoint.policy = policy_.model;
    checkpoint.tokenizer = policy_.tokenizer.get();
    checkpoint.optimizer = optimizer_.get();
    const double best = progress_.best_eval;
    checkpoint.state = {
        {"step", step},
        {"epoch", progress_.epoch},
        {"next_batch", progress_.next_batch},
        {"best_eval_loss", std::isfinite(best) ? nlohmann::json(best) : nlohmann::json()},
        {"evals_without_gain", progress_.evals_without_gain},
        {"torch_rng", save_torch_rng()},
        {"recipe", write_config(const_cast<Recipe&>(recipe_))}};
    save_run_checkpoint(run_dir_.path(), checkpoint, config_.save_total_limit);
  }

  // The step's micro-batches (never across an epoch end), one optimiser step;
  // the loss is the mean over all their response tokens, as one large batch
  // would give. Returns the metrics line.
  nlohmann::json train_step(int64_t step) {
    auto start = std::chrono::steady_clock::now();
    if (progress_.next_batch >= static_cast<int64_t>(plan_.size())) {
      plan_ = epoch_plan(train_.examples, config_, seed_, ++progress_.epoch);
      progress_.next_batch = 0;
    }
    std::vector<SftBatch> micro;
    int64_t step_tokens = 0, real_tokens = 0;
    for (int64_t m = 0; m < config_.gradient_accumulation_steps &&
                        progress_.next_batch < static_cast<int64_t>(plan_.size());
         ++m) {
      micro.push_back(collate_sft(train_.examples, plan_[progress_.next_batch++], pad_id_));
      step_tokens += micro.back().loss_tokens;
      real_tokens += micro.back().attention_mask.sum().item<int64_t>();
    }
    double loss_sum = 0.0;
    for (const SftBatch& batch : micro) {
      at::Tensor input = batch.tokens.to(policy_.device),
                 mask = batch.attention_mask.to(policy_.device);
      LmLoss loss = causal_lm_loss(*policy_.model, input, mask, batch.loss_mask.to(policy_.device));
      (loss.sum / static_cast<double>(std::max<int64_t>(step_tokens, 1))).backward();
      loss_sum += loss.sum.item<double>();
    }
    OptimizerStepStats stats = optimizer_->step();
    optimizer_->zero_grad();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json line = {
        {"step", step},
        {"loss", loss_sum / static_cast<double>(std::max<int64_t>(step_tokens, 1))},
        {"learning_rate", stats.learning_rate},
        {"grad_norm", stats.grad_norm},
        {"tokens_per_second", static_cast<double>(real_tokens) / std::max(seconds, 1e-9)},
        {"epoch", static_cast<double>(progress_.epoch) +
                      static_cast<double>(progress_.next_batch) / plan_.size()}};
    if (stats.skipped) line["skipped"] = true;
    return line;
  }

  // Adds eval_loss to `line` and applies early stopping; true = stop.
  bool evaluate(int64_t step, nlohmann::json& line) {
    double eval_loss = sft_eval_loss(policy_.model, eval_, config_, pad_id_, policy_.device);
    line["eval_loss"] = eval_loss;
    if (eval_loss < progress_.best_eval - config_.early_stopping_threshold) {
      progress_.best_eval = eval_loss;
      progress_.evals_without_gain = 0;
    } else if (config_.early_stopping_patience > 0 &&
               ++progress_.evals_without_gain >= config_.early_stopping_patience) {
      log_info() << "sft: early stop at step " << step << ": eval loss " << eval_loss << ", best "
                 << progress_.best_eval;
      return true;
    }
    return false;
  }

  const Recipe& recipe_;
  const SftConfig& config_;
  RunDir& run_dir_;
  uint64_t seed_;
  LoadedPolicy policy_;
  int64_t pad_id_ = 0;
  SftDataset train_;
  std::vector<SftExample> eval_;
  int64_t total_steps_ = 0;
  std::unique_ptr<Optimizer> optimizer_;
  SftProgress progress_;
  std::vector<std::vector<size_t>> plan_;  // the current epoch's batches
};

void run_sft_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  recipe.require({"model", "sft"});
  if (const char* world = std::getenv("WORLD_SIZE"); world && std::atoi(world) > 1) {
    throw_usage_error("the sft stage runs on one process (WORLD_SIZE is " + std::string(world) +
                      ")");
  }
  SftRun(recipe, run_dir).train(options.resume);
}

}  // namespace

REGISTER_STAGE("sft", run_sft_stage);

}  // namespace r1kit
