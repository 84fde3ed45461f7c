// The `pretrain` stage: causal language modelling on token shards prepared by
// `r1kit data prepare` (data/token_loader.h), data-parallel across ranks, with
// held-out eval loss, checkpoints that resume to the same batches, and the
// final model written to <output_dir>/final. The loop of nanoGPT's train.py.

#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/seed.h"
#include "data/token_loader.h"
#include "learner/distributed.h"
#include "learner/lm_loss.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"
#include "policy/checkpoint.h"
#include "policy/model_source.h"

namespace r1kit {
namespace {

// Mean next-token loss over up to `batches` batches of the eval split.
double pretrain_eval_loss(Transformer& model, TokenLoader& eval, int64_t batches,
                          at::Device device) {
  at::NoGradGuard no_grad;
  model->eval();
  eval.restore({0, 0});
  const int64_t seq_len = eval.options().seq_len;
  double sum = 0.0;
  int64_t tokens = 0;
  for (int64_t b = 0; b < std::min(batches, eval.batches_per_epoch()); ++b) {
    at::Tensor window = eval.next().to(device);  // (B, seq_len + 1)
    at::Tensor inputs = window.narrow(1, 0, seq_len), targets = window.narrow(1, 1, seq_len);
    at::Tensor ones = at::ones_like(inputs);
    LmLoss loss = lm_loss_from_hidden(model->forward_hidden(inputs, ones), model->output_weight(),
                                      targets, ones);
    sum += loss.sum.item<double>();
    tokens += loss.tokens;
  }
  model->train();
  return sum / static_cast<double>(std::max<int64_t>(tokens, 1));
}

// One pretraining run: the policy, its data loaders and optimiser.
class PretrainRun {
 public:
  PretrainRun(const Recipe& recipe, RunDir& run_dir)
      : recipe_(recipe),
        config_(recipe.pretrain),
        run_dir_(run_dir),
        distributed_(Distributed::from_environment(resolve_device(recipe.model.device))),
        seed_(static_cast<uint64_t>(recipe.seed)) {
    seed_torch(seed_);
    policy_ = load_policy(recipe.model, seed_, recipe.source);
    policy_.model->set_gradient_checkpointing(config_.gradient_checkpointing);
    open_data();
    optimizer_ = std::make_unique<Optimizer>(policy_.model->decay_parameters(),
                                             policy_.model->no_decay_parameters(), recipe.optimizer,
                                             config_.max_steps);
  }

  void train(bool resume) {
    Transformer& model = policy_.model;
    const int64_t done = resume ? restore() : 0;
    model->train();
    ProgressBar progress("pretrain", config_.max_steps);
    progress.update(done);
    for (int64_t step = done + 1; step <= config_.max_steps; ++step) {
      nlohmann::json line = train_step(step);
      const bool last = step == config_.max_steps;
      if (eval_loader_ && ((config_.eval_steps > 0 && step % config_.eval_steps == 0) || last)) {
        line["eval_loss"] =
            pretrain_eval_loss(model, *eval_loader_, config_.eval_batches, policy_.device);
      }
      if (distributed_->is_main()) run_dir_.log_metrics(line);
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f", line["loss"].get<double>());
      progress.update(step, status);
      if ((config_.save_steps > 0 && step % config_.save_steps == 0) || last) save_checkpoint(step);
    }
    progress.finish();
    if (distributed_->is_main()) {
      auto folder = save_final_model(run_dir_.path(), model, *policy_.tokenizer);
      log_info() << "final model written to " << folder.string();
    }
  }

 private:
  // The training loader (this rank's share) and the held-out one.
  void open_data() {
    std::shared_ptr<const ShardSet> shards;
    try {
      shards = ShardSet::open(config_.data);
    } catch (const Error& e) {
      throw with_context(e, recipe_.source + ": pretrain.data");
    }
    if (shards->vocab_size() > policy_.model->config().vocab_size) {
      throw_config_error(recipe_.source + ": pretrain.data: the shards use a vocabulary of " +
                         std::to_string(shards->vocab_size()) + " ids, the model has " +
                         std::to_string(policy_.model->config().vocab_size));
    }
    TokenLoaderOptions train_options{.seq_len = config_.seq_len,
                                     .batch_size = config_.per_device_train_batch_size,
                                     .seed = seed_,
                                     .rank = distributed_->rank(),
                                     .world_size = distributed_->world_size(),
                                     .split = config_.eval_fraction > 0 ? "train" : "all",
                                     .eval_fraction = config_.eval_fraction,
                                     .prefetch = config_.prefetch_batches};
    try {
      loader_ = std::make_unique<TokenLoader>(shards, train_options);
      if (config_.eval_fraction > 0) {
        // Every rank evaluates the same windows: the eval split is small.
        TokenLoaderOptions eval_options = train_options;
        eval_options.split = "eval";
        eval_options.shuffle = false;
        eval_options.prefetch = 0;
        eval_options.rank = 0;
        eval_options.world_size = 1;
        int64_t windows = TokenLoader::count_windows(*shards, eval_options);
        eval_options.batch_size = std::min(config_.per_device_train_batch_size, windows);
        if (windows > 0) eval_loader_ = std::make_unique<TokenLoader>(shards, eval_options);
      }
    } catch (const Error& e) {
      throw with_context(e, recipe_.source + ": pretrain");
    }
    if (config_.eval_fraction > 0 && !eval_loader_)
      log_warning() << "pretrain: the eval split is empty; no eval loss";
  }

  // The step of the newest checkpoint, its state restored; 0 without one.
  int64_t restore() {
    auto folder = resume_checkpoint(run_dir_.path());
    if (!folder) return 0;
    nlohmann::json state = read_trainer_state(*folder);
    const int64_t done = state.at("step").get<int64_t>();
    load_weights_into(policy_.model, *folder / "model");
    optimizer_->load(*folder / "optimizer");
    loader_->restore(LoaderState::from_json(state.at("loader")));
    restore_torch_rng(state.at("torch_rng").get<std::string>());
    log_info() << "resumed from " << folder->string() << " at step " << done;
    return done;
  }

  void save_checkpoint(int64_t step) {
    if (!distributed_->is_main()) return;
    RunCheckpoint checkpoint;
    checkpoint.policy = policy_.model;
    checkpoint.tokenizer = policy_.tokenizer.get();
    checkpoint.optimizer = optimizer_.get();
    checkpoint.state = {{"step", step},
                        {"loader", loader_->state().to_json()},
                        {"torch_rng", save_torch_rng()},
                        {"recipe", write_config(const_cast<Recipe&>(recipe_))}};
    save_run_checkpoint(run_dir_.path(), checkpoint, config_.save_total_limit);
  }

  // gradient_accumulation_steps batches of next-token loss, summed over
  // ranks, and one optimiser step; returns the metrics line.
  nlohmann::json train_step(int64_t step) {
    Transformer& model = policy_.model;
    const int64_t seq_len = config_.seq_len;
    auto start = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    int64_t tokens = 0;
    for (int64_t micro = 0; micro < config_.gradient_accumulation_steps; ++micro) {
      at::Tensor window = loader_->next().to(policy_.device);  // (B, seq_len + 1)
      at::Tensor inputs = window.narrow(1, 0, seq_len), targets = window.narrow(1, 1, seq_len);
      at::Tensor ones = at::ones_like(inputs);
      LmLoss loss = lm_loss_from_hidden(model->forward_hidden(inputs, ones), model->output_weight(),
                                        targets, ones);
      (loss.loss /
       static_cast<double>(config_.gradient_accumulation_steps * distributed_->world_size()))
          .backward();
      loss_sum += loss.sum.item<double>();
      tokens += loss.tokens;
    }
    if (distributed_->world_size() > 1) {
      std::vector<at::Tensor> grads;
      for (auto& p : model->parameters()) {
        if (p.grad().defined()) grads.push_back(p.grad());
      }
      distributed_->all_reduce_sum(grads);
      at::Tensor totals = at::tensor({loss_sum, static_cast<double>(tokens)}, at::kDouble);
      distributed_->all_reduce_sum(totals);
      loss_sum = totals[0].item<double>();
      tokens = static_cast<int64_t>(totals[1].item<double>());
    }
    OptimizerStepStats stats = optimizer_->step();
    optimizer_->zero_grad();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json line = {
        {"step", step},
        {"loss", loss_sum / static_cast<double>(std::max<int64_t>(tokens, 1))},
        {"learning_rate", stats.learning_rate},
        {"grad_norm", stats.grad_norm},
        {"tokens_per_second", static_cast<double>(tokens) / std::max(seconds, 1e-9)},
        {"epoch", loader_->state().epoch}};
    if (stats.skipped) line["skipped"] = true;
    return line;
  }

  const Recipe& recipe_;
  const PretrainConfig& config_;
  RunDir& run_dir_;
  std::unique_ptr<Distributed> distributed_;
  uint64_t seed_;
  LoadedPolicy policy_;
  std::unique_ptr<TokenLoader> loader_;
  std::unique_ptr<TokenLoader> eval_loader_;
  std::unique_ptr<Optimizer> optimizer_;
};

void run_pretrain_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  recipe.require({"model", "pretrain"});
  PretrainRun(recipe, run_dir).train(options.resume);
}

}  // namespace

REGISTER_STAGE("pretrain", run_pretrain_stage);

}  // namespace r1kit
