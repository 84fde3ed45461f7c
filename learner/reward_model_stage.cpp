#include "learner/reward_model_stage.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "common/error.h"
#include "common/jsonl.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/run_dir.h"
#include "common/seed.h"
#include "learner/optimizer.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"
#include "policy/checkpoint.h"
#include "policy/model_source.h"

namespace r1kit {

void RewardModelConfig::visit(ConfigVisitor& v) {
  v.field("train_file", train_file, {.required = true});
  v.field("eval_file", eval_file);
  v.field("eval_fraction", eval_fraction, {.min = 0.0, .max = 0.9});
  v.field("max_length", max_length, {.min = 2.0});
  v.field("per_device_train_batch_size", per_device_train_batch_size, {.min = 1.0});
  v.field("num_train_epochs", num_train_epochs, {.min = 1.0});
  v.field("eval_steps", eval_steps, {.min = 0.0});
}

namespace {

std::vector<int64_t> encode_pair_side(const Tokenizer& tokenizer, const std::string& text,
                                      int64_t max_length) {
  std::vector<int64_t> ids = tokenizer.encode(text, /*add_special_tokens=*/true);
  if (static_cast<int64_t>(ids.size()) > max_length) ids.erase(ids.begin(), ids.end() - max_length);
  return ids;
}

std::vector<PreferencePair> load_pairs(const std::string& path, const Tokenizer& tokenizer,
                                       int64_t max_length) {
  std::vector<PreferencePair> pairs;
  for_each_jsonl_line(path, [&](JsonlLine& line) {
    const nlohmann::json& value = line.value;
    auto text = [&](const char* key) -> std::string {
      if (!value.is_object() || !value.contains(key) || !value[key].is_string()) {
        throw_jsonl_line_error(path, line.number, std::string("needs a string \"") + key + "\"");
      }
      return value[key].get<std::string>();
    };
    std::string prompt = value.is_object() && value.contains("prompt") ? text("prompt") : "";
    pairs.push_back({encode_pair_side(tokenizer, prompt + text("chosen"), max_length),
                     encode_pair_side(tokenizer, prompt + text("rejected"), max_length)});
  });
  if (pairs.empty()) throw_data_error(path + ": no preference pairs");
  return pairs;
}

// Rewards of the chosen and rejected sides of pairs [begin, end): (P) each.
std::pair<at::Tensor, at::Tensor> score_pairs(Transformer& model, ScalarHead& head,
                                              const std::vector<PreferencePair>& pairs,
                                              size_t begin, size_t end, at::Device device) {
  const int64_t count = static_cast<int64_t>(end - begin);
  int64_t width = 1;
  for (size_t i = begin; i < end; ++i) {
    width = std::max<int64_t>({width, static_cast<int64_t>(pairs[i].chosen.size()),
                               static_cast<int64_t>(pairs[i].rejected.size())});
  }
  at::Tensor tokens = at::zeros({2 * count, width}, at::kLong);  // chosen rows, then rejected rows
  at::Tensor mask = at::zeros({2 * count, width}, at::kLong);
  for (int64_t p = 0; p < count; ++p) {
    for (int side = 0; side < 2; ++side) {
      const auto& ids = side == 0 ? pairs[begin + p].chosen : pairs[begin + p].rejected;
      const int64_t row = side * count + p;
      std::copy(ids.begin(), ids.end(), tokens[row].data_ptr<int64_t>());
      mask[row].narrow(0, 0, static_cast<int64_t>(ids.size())).fill_(1);
    }
  }
  at::Tensor device_mask = mask.to(device);
  at::Tensor rewards = head->at_last_token(model->forward_hidden(tokens.to(device), device_mask),
                                           device_mask);  // (2P)
  return {rewards.narrow(0, 0, count), rewards.narrow(0, count, count)};
}

struct PairEvaluation {
  double loss = 0.0;
  double accuracy = 0.0;
};

PairEvaluation evaluate_pairs(Transformer& model, ScalarHead& head,
                              const std::vector<PreferencePair>& pairs, int64_t batch,
                              at::Device device) {
  at::NoGradGuard no_grad;
  double loss = 0, correct = 0;
  for (size_t begin = 0; begin < pairs.size(); begin += batch) {
    size_t end = std::min(pairs.size(), begin + static_cast<size_t>(batch));
    auto [chosen, rejected] = score_pairs(model, head, pairs, begin, end, device);
    at::Tensor margin = (chosen - rejected).to(at::kFloat);
    loss -= at::log_sigmoid(margin).sum().item<double>();
    correct += (margin > 0).sum().item<double>();
  }
  const double n = static_cast<double>(std::max<size_t>(pairs.size(), 1));
  return {loss / n, correct / n};
}

// The training pairs and the held-out ones (a file, or a seeded share of the training file).
std::pair<std::vector<PreferencePair>, std::vector<PreferencePair>> load_preference_data(
    const RewardModelConfig& config, const Tokenizer& tokenizer, uint64_t seed) {
  std::vector<PreferencePair> train = load_pairs(config.train_file, tokenizer, config.max_length);
  std::vector<PreferencePair> eval;
  std::mt19937_64 rng = make_rng(seed, "reward_model/split");
  if (!config.eval_file.empty()) {
    eval = load_pairs(config.eval_file, tokenizer, config.max_length);
  } else if (config.eval_fraction > 0) {
    std::shuffle(train.begin(), train.end(), rng);
    size_t held =
        std::max<size_t>(1, static_cast<size_t>(std::round(config.eval_fraction * train.size())));
    held = std::min(held, train.size() - 1);
    eval.assign(train.end() - held, train.end());
    train.resize(train.size() - held);
  }
  return {std::move(train), std::move(eval)};
}

// One optimiser step on pairs [begin, end) of `order` (Bradley-Terry loss);
// returns the metrics line without its step.
nlohmann::json train_step(Transformer& model, ScalarHead& head, Optimizer& optimizer,
                          const std::vector<PreferencePair>& order, size_t begin, size_t end,
                          at::Device device) {
  optimizer.zero_grad();
  auto [chosen, rejected] = score_pairs(model, head, order, begin, end, device);
  at::Tensor margin = (chosen - rejected).to(at::kFloat);
  at::Tensor loss = -at::log_sigmoid(margin).mean();
  loss.backward();
  OptimizerStepStats stats = optimizer.step();
  double accuracy = (margin > 0).to(at::kFloat).mean().item<double>();
  return {{"loss", loss.item<double>()},
          {"accuracy", accuracy},
          {"margin", margin.mean().item<double>()},
          {"learning_rate", stats.learning_rate},
          {"grad_norm", stats.grad_norm}};
}

void run_reward_model_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  recipe.require({"model", "reward_model"});
  if (options.resume)
    throw_usage_error("the reward_model stage has no --resume yet; start it again");
  if (const char* world = std::getenv("WORLD_SIZE"); world && std::atoi(world) > 1) {
    throw_usage_error("the reward_model stage runs on one process (WORLD_SIZE is " +
                      std::string(world) + ")");
  }
  const RewardModelConfig& config = recipe.reward_model;
  const auto seed = static_cast<uint64_t>(recipe.seed);
  seed_torch(seed);
  if (recipe.model.path.empty())
    throw_config_error(recipe.source + ": model.path: the reward model starts from a HF folder");
  const at::Device device = resolve_device(recipe.model.device);
  const at::ScalarType dtype = resolve_dtype(recipe.model.dtype, device);
  PretrainedWithHead loaded =
      load_pretrained_with_head(recipe.model.path, ScalarHeadKind::kReward, device, dtype);
  Transformer model = loaded.model;
  ScalarHead head = loaded.head;
  auto tokenizer =
      load_tokenizer(recipe.model.tokenizer.empty() ? recipe.model.path : recipe.model.tokenizer);

  auto [train, eval] = load_preference_data(config, *tokenizer, seed);
  const int64_t batch = config.per_device_train_batch_size;
  const int64_t steps_per_epoch = (static_cast<int64_t>(train.size()) + batch - 1) / batch;
  const int64_t total_steps = steps_per_epoch * config.num_train_epochs;
  std::vector<at::Tensor> decay = model->decay_parameters();
  for (auto& parameter : head->parameters()) decay.push_back(parameter);
  Optimizer optimizer(decay, model->no_decay_parameters(), recipe.optimizer, total_steps);
  log_info() << "reward_model: " << train.size() << " training and " << eval.size()
             << " held-out pairs, " << total_steps << " steps";

  auto log_eval = [&](int64_t step) {
    if (eval.empty()) return;
    PairEvaluation result = evaluate_pairs(model, head, eval, batch, device);
    run_dir.log_metrics(
        {{"step", step}, {"eval/pair_accuracy", result.accuracy}, {"eval_loss", result.loss}});
    log_info() << "eval at step " << step << ": pair accuracy " << result.accuracy << ", loss "
               << result.loss;
  };
  log_eval(0);
  ProgressBar progress("reward_model", total_steps);
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < config.num_train_epochs; ++epoch) {
    std::mt19937_64 order_rng = make_rng(seed, "reward_model/epoch-" + std::to_string(epoch));
    std::vector<PreferencePair> order = train;
    std::shuffle(order.begin(), order.end(), order_rng);
    for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(batch)) {
      size_t end = std::min(order.size(), begin + static_cast<size_t>(batch));
      nlohmann::json line = train_step(model, head, optimizer, order, begin, end, device);
      line["step"] = ++step;
      run_dir.log_metrics(line);
      char status[64];
      std::snprintf(status, sizeof status, "loss %.4f", line["loss"].get<double>());
      progress.update(step, status);
      if (config.eval_steps > 0 && step % config.eval_steps == 0 && step != total_steps)
        log_eval(step);
    }
  }
  progress.finish();
  log_eval(step);
  auto final_folder = save_final_model(run_dir.path(), model, *tokenizer, head);
  log_info() << "reward model written to " << final_folder.string()
             << " (load it with the learned_rm reward)";
}

}  // namespace

REGISTER_STAGE("reward_model", run_reward_model_stage);

}  // namespace r1kit
