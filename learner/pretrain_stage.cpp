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
    LmLoss loss = lm_loss(model->forward(inputs, ones), targets, ones);
    sum += loss.sum.item<double>();
    tokens += loss.tokens;
  }
  model->train();
  return sum / static_cast<double>(std::max<int64_t>(tokens, 1));
}

void run_pretrain_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  recipe.require({"model", "pretrain"});
  const PretrainConfig& config = recipe.pretrain;
  auto distributed = Distributed::from_environment(resolve_device(recipe.model.device));
  const auto seed = static_cast<uint64_t>(recipe.seed);
  seed_torch(seed);
  LoadedPolicy policy = load_policy(recipe.model, seed, recipe.source);
  Transformer& model = policy.model;

  std::shared_ptr<const ShardSet> shards;
  try {
    shards = ShardSet::open(config.data);
  } catch (const Error& e) {
    throw with_context(e, recipe.source + ": pretrain.data");
  }
  if (shards->vocab_size() > model->config().vocab_size) {
    throw_config_error(recipe.source + ": pretrain.data: the shards use a vocabulary of " +
                       std::to_string(shards->vocab_size()) + " ids, the model has " +
                       std::to_string(model->config().vocab_size));
  }
  TokenLoaderOptions train_options{.seq_len = config.seq_len,
                                   .batch_size = config.per_device_train_batch_size,
                                   .seed = seed,
                                   .rank = distributed->rank(),
                                   .world_size = distributed->world_size(),
                                   .split = config.eval_fraction > 0 ? "train" : "all",
                                   .eval_fraction = config.eval_fraction,
                                   .prefetch = config.prefetch_batches};
  std::unique_ptr<TokenLoader> loader;
  std::unique_ptr<TokenLoader> eval_loader;
  try {
    loader = std::make_unique<TokenLoader>(shards, train_options);
    if (config.eval_fraction > 0) {
      // Every rank evaluates the same windows: the eval split is small.
      TokenLoaderOptions eval_options = train_options;
      eval_options.split = "eval";
      eval_options.shuffle = false;
      eval_options.prefetch = 0;
      eval_options.rank = 0;
      eval_options.world_size = 1;
      int64_t windows = TokenLoader::count_windows(*shards, eval_options);
      eval_options.batch_size = std::min(config.per_device_train_batch_size, windows);
      if (windows > 0) eval_loader = std::make_unique<TokenLoader>(shards, eval_options);
    }
  } catch (const Error& e) {
    throw with_context(e, recipe.source + ": pretrain");
  }
  if (config.eval_fraction > 0 && !eval_loader)
    log_warning() << "pretrain: the eval split is empty; no eval loss";

  Optimizer optimizer(model->decay_parameters(), model->no_decay_parameters(), recipe.optimizer,
                      config.max_steps);
  std::vector<at::Tensor> parameters = model->parameters();
  int64_t done = 0;
  if (options.resume) {
    if (auto folder = latest_run_checkpoint(run_dir.path())) {
      nlohmann::json state = read_json_file((*folder / "trainer_state.json").string());
      done = state.at("step").get<int64_t>();
      load_weights_into(model, *folder / "model");
      optimizer.load(*folder / "optimizer");
      loader->restore(LoaderState::from_json(state.at("loader")));
      restore_torch_rng(state.at("torch_rng").get<std::string>());
      log_info() << "resumed from " << folder->string() << " at step " << done;
    } else {
      log_warning() << "--resume: no checkpoint in " << run_dir.path().string()
                    << "; starting from step 0";
    }
  }
  auto save_checkpoint = [&](int64_t step) {
    if (!distributed->is_main()) return;
    RunCheckpoint checkpoint;
    checkpoint.policy = model;
    checkpoint.tokenizer = policy.tokenizer.get();
    checkpoint.optimizer = &optimizer;
    checkpoint.state = {{"step", step},
                        {"loader", loader->state().to_json()},
                        {"torch_rng", save_torch_rng()},
                        {"recipe", write_config(const_cast<Recipe&>(recipe))}};
    save_run_checkpoint(run_dir.path(), checkpoint, config.save_total_limit);
  };

  model->train();
  const int64_t seq_len = config.seq_len;
  ProgressBar progress("pretrain", config.max_steps);
  progress.update(done);
  for (int64_t step = done + 1; step <= config.max_steps; ++step) {
    auto start = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    int64_t tokens = 0;
    for (int64_t micro = 0; micro < config.gradient_accumulation_steps; ++micro) {
      at::Tensor window = loader->next().to(policy.device);  // (B, seq_len + 1)
      at::Tensor inputs = window.narrow(1, 0, seq_len), targets = window.narrow(1, 1, seq_len);
      at::Tensor ones = at::ones_like(inputs);
      LmLoss loss = lm_loss(model->forward(inputs, ones), targets, ones);  // logits (B, seq_len, V)
      (loss.loss /
       static_cast<double>(config.gradient_accumulation_steps * distributed->world_size()))
          .backward();
      loss_sum += loss.sum.item<double>();
      tokens += loss.tokens;
    }
    if (distributed->world_size() > 1) {
      std::vector<at::Tensor> grads;
      for (auto& p : parameters) {
        if (p.grad().defined()) grads.push_back(p.grad());
      }
      distributed->all_reduce_sum(grads);
      at::Tensor totals = at::tensor({loss_sum, static_cast<double>(tokens)}, at::kDouble);
      distributed->all_reduce_sum(totals);
      loss_sum = totals[0].item<double>();
      tokens = static_cast<int64_t>(totals[1].item<double>());
    }
    OptimizerStepStats stats = optimizer.step();
    optimizer.zero_grad();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json line = {
        {"step", step},
        {"loss", loss_sum / static_cast<double>(std::max<int64_t>(tokens, 1))},
        {"learning_rate", stats.learning_rate},
        {"grad_norm", stats.grad_norm},
        {"tokens_per_second", static_cast<double>(tokens) / std::max(seconds, 1e-9)},
        {"epoch", loader->state().epoch}};
    if (stats.skipped) line["skipped"] = true;
    bool last = step == config.max_steps;
    if (eval_loader && ((config.eval_steps > 0 && step % config.eval_steps == 0) || last)) {
      line["eval_loss"] =
          pretrain_eval_loss(model, *eval_loader, config.eval_batches, policy.device);
    }
    if (distributed->is_main()) run_dir.log_metrics(line);
    char status[96];
    std::snprintf(status, sizeof status, "loss %.4f", line["loss"].get<double>());
    progress.update(step, status);
    if ((config.save_steps > 0 && step % config.save_steps == 0) || last) save_checkpoint(step);
  }
  progress.finish();
  if (distributed->is_main()) {
    std::filesystem::path final_folder = run_dir.path() / "final";
    save_pretrained(model, final_folder);
    policy.tokenizer->save_folder(final_folder);
    log_info() << "final model written to " << final_folder.string();
  }
}

}  // namespace

REGISTER_STAGE("pretrain", run_pretrain_stage);

}  // namespace r1kit
