#include "learner/value_model.h"

#include <c10/core/GradMode.h>

#include "common/error.h"
#include "common/logging.h"
#include "learner/advantages.h"
#include "policy/checkpoint.h"

namespace r1kit {
namespace {

// GAE from the value model's values (Schulman et al. 2016).
class GaeEstimator : public AdvantageEstimator {
 public:
  explicit GaeEstimator(ValueModel& value_model) : value_model_(value_model) {}

  void assign(const AdvantageRound& round, std::vector<TrainingSample>& samples) override {
    std::vector<float> rewards;
    for (int64_t kept : round.kept)
      rewards.push_back(round.rewards[round.first + kept].item<float>());
    value_model_.estimate(samples, round.begin, round.begin + round.kept.size(), rewards);
  }

 private:
  ValueModel& value_model_;
};

R1KIT_REGISTER(advantage_estimator_registry(), "gae",
               [](const AdvantageOptions& options) -> std::unique_ptr<AdvantageEstimator> {
                 if (!options.value_model) {
                   throw_config_error(
                       "adv_estimator: \"gae\" needs a value model; use stage \"ppo\"");
                 }
                 return std::make_unique<GaeEstimator>(*options.value_model);
               });

}  // namespace

ValueModel::ValueModel(const std::filesystem::path& model_folder, at::Device device,
                       at::ScalarType dtype, const GrpoConfig& config,
                       const OptimizerConfig& optimizer, int64_t total_optimizer_steps)
    : config_(config), device_(device) {
  PretrainedWithHead loaded =
      load_pretrained_with_head(model_folder, ScalarHeadKind::kValue, device, dtype);
  backbone_ = loaded.model;
  head_ = loaded.head;
  std::vector<at::Tensor> decay = backbone_->decay_parameters();
  for (auto& parameter : head_->parameters()) decay.push_back(parameter);
  optimizer_ = std::make_unique<Optimizer>(decay, backbone_->no_decay_parameters(), optimizer,
                                           total_optimizer_steps);
}

ValueModel::~ValueModel() = default;

void ValueModel::estimate(std::vector<TrainingSample>& samples, size_t begin, size_t end,
                          const std::vector<float>& rewards) {
  if (end <= begin) return;
  at::NoGradGuard no_grad;
  MicroBatch batch = make_micro_batch(samples, begin, end);
  at::Tensor tokens = batch.tokens.to(device_);
  at::Tensor attention = batch.attention_mask.to(device_);
  at::Tensor values =
      head_->forward(backbone_->forward_hidden(tokens, attention)).to(at::kFloat).cpu();  // (B, L)
  // The value of the state before each target token, aligned with the loss mask.
  values = values.narrow(1, 0, values.size(1) - 1).contiguous();  // (B, L-1)
  at::Tensor token_rewards = at::zeros_like(values);  // the outcome reward on the last token
  for (size_t r = 0; r < end - begin; ++r) {
    const TrainingSample& sample = samples[begin + r];
    const int64_t completion = static_cast<int64_t>(sample.tokens.size()) - sample.prompt_length;
    if (completion > 0) token_rewards[r][sample.prompt_length - 2 + completion] = rewards[r];
  }
  GaeResult result = gae(token_rewards, values, batch.completion_mask, config_.gamma, config_.lam);
  for (size_t r = 0; r < end - begin; ++r) {
    TrainingSample& sample = samples[begin + r];
    const int64_t completion = static_cast<int64_t>(sample.tokens.size()) - sample.prompt_length;
    if (completion <= 0) continue;
    auto slice = [&](const at::Tensor& from) {
      at::Tensor part = from[r].narrow(0, sample.prompt_length - 1, completion).contiguous();
      return std::vector<float>(part.data_ptr<float>(), part.data_ptr<float>() + completion);
    };
    sample.token_advantages = slice(result.advantages);
    sample.returns = slice(result.returns);
    sample.old_values = slice(values);
  }
}

std::vector<at::Tensor> ValueModel::parameters() {
  std::vector<at::Tensor> parameters = backbone_->parameters();
  for (auto& parameter : head_->parameters()) parameters.push_back(parameter);
  return parameters;
}

ValueLossOutput ValueModel::loss(const at::Tensor& tokens, const at::Tensor& attention,
                                 const MicroBatch& batch, const at::Tensor& mask,
                                 const LossNormalizer& normalizer) {
  at::Tensor values = head_->forward(backbone_->forward_hidden(tokens, attention)).to(at::kFloat);
  values = values.narrow(1, 0, values.size(1) - 1);  // (B, L-1)
  return value_loss(values, batch.old_values.to(device_), batch.returns.to(device_), mask, config_,
                    normalizer);
}

void ValueModel::tally(double loss, double tokens, double clipped) {
  loss_sum_ += loss;
  tokens_ += tokens;
  clipped_ += clipped;
}

void ValueModel::zero_grad() { optimizer_->zero_grad(); }

void ValueModel::step(Distributed& distributed) {
  std::vector<at::Tensor> gradients;
  for (auto& parameter : parameters()) {
    if (!parameter.grad().defined()) parameter.mutable_grad() = at::zeros_like(parameter);
    gradients.push_back(parameter.grad());
  }
  distributed.all_reduce_sum(gradients);
  optimizer_->step();
  ++steps_;
}

void ValueModel::write(StepMetrics& metrics) {
  metrics.set("critic/vf_loss", loss_sum_ / std::max<int64_t>(steps_, 1));
  metrics.set("critic/vf_clipfrac", tokens_ > 0 ? clipped_ / tokens_ : 0.0);
  loss_sum_ = tokens_ = clipped_ = 0;
  steps_ = 0;
}

void ValueModel::add_to(RunCheckpoint& checkpoint) {
  checkpoint.extra_models.emplace("critic", backbone_);
  checkpoint.extra_heads.emplace("critic", head_);
  checkpoint.extra_optimizers.emplace("critic_optimizer", optimizer_.get());
}

void ValueModel::restore(const std::filesystem::path& checkpoint_folder) {
  if (!std::filesystem::exists(checkpoint_folder / "critic")) {
    throw_data_error(checkpoint_folder.string() +
                     ": a ppo checkpoint needs critic/ (the value model); it is missing");
  }
  load_weights_into(backbone_, head_, checkpoint_folder / "critic");
  optimizer_->load(checkpoint_folder / "critic_optimizer");
}

void ValueModel::save_final(const std::filesystem::path& run_folder, const Tokenizer& tokenizer) {
  // load_pretrained_with_head(..., kValue) reads it back.
  const std::filesystem::path folder = run_folder / "final" / "critic";
  save_pretrained(backbone_, folder, {.head = head_});
  tokenizer.save_folder(folder);
  log_info() << "final value model written to " << folder.string();
}

}  // namespace r1kit
