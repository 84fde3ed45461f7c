#include "learner/learner.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <array>
#include <cmath>

#include "common/error.h"
#include "common/logging.h"
#include "learner/autocast.h"
#include "learner/logprobs.h"
#include "learner/value_model.h"
#include "policy/checkpoint.h"
#include "policy/lora.h"
#include "policy/shared_prefix.h"

namespace r1kit {
namespace {

// d loss / d parameters[begin..end) into gradients[begin..end): left undefined
// for a frozen parameter or one the loss does not reach. .grad is untouched
// (LearnerLanes adds the micro-batches up in order).
void gradients_into(std::vector<at::Tensor>& gradients, const at::Tensor& loss,
                    const std::vector<at::Tensor>& parameters, size_t begin, size_t end) {
  std::vector<at::Tensor> trainable;
  std::vector<size_t> where;
  for (size_t j = begin; j < end; ++j) {
    if (!parameters[j].requires_grad()) continue;
    trainable.push_back(parameters[j]);
    where.push_back(j);
  }
  if (trainable.empty() || !loss.requires_grad()) return;
  std::vector<at::Tensor> computed =
      torch::autograd::grad({loss}, trainable, {}, /*retain_graph=*/false,
                            /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t k = 0; k < where.size(); ++k) gradients[where[k]] = std::move(computed[k]);
}

// Bytes of one full set of gradients of the parameters that train.
int64_t trainable_bytes(const std::vector<at::Tensor>& parameters) {
  int64_t bytes = 0;
  for (const at::Tensor& parameter : parameters) {
    if (parameter.requires_grad()) bytes += parameter.numel() * parameter.element_size();
  }
  return bytes;
}

PromptAndCompletion row_of(const TrainingSample& sample) {
  return PromptAndCompletion{sample.tokens, sample.prompt_length};
}

}  // namespace

bool reference_needs_copy(Transformer& policy, const GrpoConfig& config) {
  LoraStateImpl* lora = lora_state(*policy);
  return config.uses_reference_model() &&
         (!lora || !lora->saved.empty() || config.ref_model_sync_steps > 0);
}

Transformer frozen_copy(Transformer& model) {
  Transformer copy(model->config());
  auto target = copy->named_parameters();
  at::NoGradGuard no_grad;
  for (const auto& [name, value] : merged_parameters(*model)) target[name].copy_(value);
  copy->to(model->model->embed_tokens->weight.device(),
           model->model->embed_tokens->weight.scalar_type());
  for (auto& parameter : copy->parameters()) parameter.set_requires_grad(false);
  return copy;
}

// One mini-batch, planned: its micro-batches (and their packed inputs on the
// shared-prompt path), the global loss normaliser, and what each micro-batch's
// lane reports back.
struct Learner::MiniBatchPlan {
  std::vector<TrainingSample> trained;  // the rows run when some are left out
  std::vector<MicroBatch> batches;
  std::vector<SharedPrefixBatch> packed;  // shared-prompt path: batches[i]'s inputs
  bool shared = false;
  LossNormalizer normalizer;
  std::vector<at::Tensor> parameters;  // the policy's, then the value model's
  size_t policy_parameters = 0;
  std::vector<PolicyLossSums> sums;  // per micro-batch
  bool measure_rollout = false;      // whether `corrections` go into the step's metrics
  std::vector<RolloutCorrectionSums> corrections;  // per micro-batch
  std::vector<std::array<double, 3>> values;       // per micro-batch: value loss, tokens, clipped
  std::vector<at::Tensor> losses;                  // per micro-batch: the detached scalar loss
};

namespace {

// What was not finite on this rank in a mini-batch whose update was skipped:
// its loss and the sums of the policy's log-probs that the metrics take.
std::string nonfinite_cause(const std::vector<at::Tensor>& losses,
                            const std::vector<PolicyLossSums>& sums) {
  bool loss_finite = true, logprobs_finite = true;
  for (const at::Tensor& loss : losses)
    loss_finite = loss_finite && (!loss.defined() || std::isfinite(loss.item<double>()));
  for (const PolicyLossSums& sum : sums)
    logprobs_finite = logprobs_finite && std::isfinite(sum.ratio + sum.entropy + sum.kl);
  if (loss_finite && logprobs_finite)
    return "this rank's loss and log-probs were finite (another rank's were not, or the backward "
           "overflowed)";
  return std::string("this rank's ") + (loss_finite ? "loss was finite" : "loss was not finite") +
         " and its " +
         (logprobs_finite ? "log-probs were finite"
                          : "log-probs were not finite (NaN/inf logits: the weights diverged?)");
}

}  // namespace

void LearnerStats::write(StepMetrics& metrics) const {
  const double tokens = std::max(sums.tokens, 1.0);
  metrics.set("clip_ratio/low_mean", sums.clipped_low / tokens);
  metrics.set("clip_ratio/high_mean", sums.clipped_high / tokens);
  metrics.set("clip_ratio/region_mean", sums.clipped / tokens);
  metrics.set("kl", sums.kl / tokens);
  metrics.set("entropy", sums.entropy / tokens);
  metrics.set("ratio_mean", sums.ratio / tokens);
  metrics.set("clip_ratio/dual_mean", sums.dual_clipped / tokens);
  metrics.set("grad_norm", grad_norm);
  metrics.set("learning_rate", learning_rate);
  metrics.set("skipped_updates", skipped_updates);
  metrics.set("train/nonfinite_skipped", skipped_updates > 0 ? 1.0 : 0.0);
  metrics.set("train/nonfinite_skipped_total", static_cast<double>(skipped_updates_total));
  // Completions the forward and backward left out: nothing of them in the loss.
  metrics.set("learner/skipped_completions", skipped_completions);
  rollout_correction.write(metrics);
}

Learner::Learner(std::shared_ptr<PolicyWeights> weights, Transformer reference, at::Device device,
                 const GrpoConfig& config, const TrainerConfig& trainer,
                 const OptimizerConfig& optimizer, Distributed& distributed,
                 ValueModel* value_model)
    : weights_(std::move(weights)),
      policy_(weights_->model),
      device_(device),
      config_(config),
      trainer_(trainer),
      distributed_(distributed),
      value_model_(value_model),
      reference_(std::move(reference)),
      reference_is_base_(!reference_ && config.uses_reference_model() && has_lora(*policy_)),
      lanes_(device, trainable_bytes(policy_->parameters()) +
                         (value_model ? trainable_bytes(value_model->parameters()) : 0)) {
  optimizer_ = std::make_unique<Optimizer>(
      policy_->decay_parameters(), policy_->no_decay_parameters(), optimizer,
      trainer.max_steps * config.num_iterations * config.num_mini_batches);
}

Learner::~Learner() = default;

LearnerStats Learner::update(const std::vector<TrainingSample>& samples) {
  LearnerStats stats;
  optimizer_steps_ = 0;
  double skipped_rows = 0;
  // Mini-batches split whole groups. Every rank runs the same number of them
  // (some may be empty) so the collectives line up.
  const int64_t group = config_.num_generations;
  const int64_t groups_local = static_cast<int64_t>(samples.size()) / group;
  const int64_t mini_batches = config_.num_mini_batches;
  // Decoupled PPO needs pi_old beyond the first forward: computed up front, before
  // the first optimiser step.
  const bool store_learner_old =
      config_.rollout_correction.enabled() && (config_.num_iterations > 1 || mini_batches > 1);
  std::vector<TrainingSample> with_learner_old;
  if (store_learner_old) {
    with_learner_old = samples;
    compute_learner_old_logprobs(with_learner_old);
  }
  const std::vector<TrainingSample>& rows = store_learner_old ? with_learner_old : samples;
  for (int64_t epoch = 0; epoch < config_.num_iterations; ++epoch) {
    for (int64_t mini = 0; mini < mini_batches; ++mini) {
      const size_t begin = static_cast<size_t>(groups_local * mini / mini_batches * group);
      const size_t end = static_cast<size_t>(groups_local * (mini + 1) / mini_batches * group);
      const bool measure_rollout = epoch == 0 && (store_learner_old || mini == 0);
      update_mini_batch(rows, begin, end, stats, skipped_rows, measure_rollout);
    }
  }
  const double total_rows =
      static_cast<double>(groups_local * group) * static_cast<double>(config_.num_iterations);
  // Every rank's sums in one all-reduce: the loss side's, then the rollout correction's.
  PolicyLossSums& sums = stats.sums;
  RolloutCorrectionSums& rollout = stats.rollout_correction;
  at::Tensor totals =
      at::tensor({sums.tokens, sums.clipped_low, sums.clipped_high, sums.clipped, sums.kl,
                  sums.entropy, sums.ratio, sums.dual_clipped, rollout.tokens, rollout.kl,
                  rollout.sequences, rollout.ppl_ratio, rollout.masked},
                 at::kDouble);
  distributed_.all_reduce_sum(totals);
  const double* total = totals.data_ptr<double>();
  sums.tokens = total[0];
  sums.clipped_low = total[1];
  sums.clipped_high = total[2];
  sums.clipped = total[3];
  sums.kl = total[4];
  sums.entropy = total[5];
  sums.ratio = total[6];
  sums.dual_clipped = total[7];
  rollout.tokens = total[8];
  rollout.kl = total[9];
  rollout.sequences = total[10];
  rollout.ppl_ratio = total[11];
  rollout.masked = total[12];
  const at::Tensor maxima =  // (world size, 2)
      distributed_.all_gather(at::tensor({rollout.weight_max, rollout.weight_max_raw}, at::kDouble))
          .view({-1, 2})
          .amax(0);
  rollout.weight_max = maxima[0].item<double>();
  rollout.weight_max_raw = maxima[1].item<double>();
  stats.grad_norm /= std::max<int64_t>(optimizer_steps_, 1);
  stats.skipped_completions = total_rows > 0 ? skipped_rows / total_rows : 0.0;
  return stats;
}

void Learner::update_mini_batch(const std::vector<TrainingSample>& samples, size_t begin,
                                size_t end, LearnerStats& stats, double& skipped_rows,
                                bool measure_rollout) {
  MiniBatchPlan plan = plan_mini_batch(samples, begin, end, skipped_rows);
  plan.measure_rollout = measure_rollout;
  optimizer_->zero_grad();
  if (value_model_) value_model_->zero_grad();
  if (plan.normalizer.tokens <= 0) plan.batches.clear();  // nothing in the loss on any rank
  plan.parameters = policy_->parameters();
  plan.policy_parameters = plan.parameters.size();
  if (value_model_) {
    for (auto& parameter : value_model_->parameters()) plan.parameters.push_back(parameter);
  }
  plan.sums.assign(plan.batches.size(), {});
  plan.corrections.assign(plan.batches.size(), {});
  plan.values.assign(plan.batches.size(), {0, 0, 0});
  plan.losses.assign(plan.batches.size(), at::Tensor());
  lanes_.run(
      static_cast<int64_t>(plan.batches.size()),
      [&](int64_t index) { return micro_batch_gradients(plan, index); }, plan.parameters);
  for (size_t index = 0; index < plan.batches.size(); ++index) {
    stats.sums += plan.sums[index];
    if (plan.measure_rollout) stats.rollout_correction += plan.corrections[index];
    if (value_model_)
      value_model_->tally(plan.values[index][0], plan.values[index][1], plan.values[index][2]);
  }
  if (value_model_) value_model_->step(distributed_);
  step_optimizer(stats, plan);
}

Learner::MiniBatchPlan Learner::plan_mini_batch(const std::vector<TrainingSample>& samples,
                                                size_t begin, size_t end, double& skipped_rows) {
  MiniBatchPlan plan;
  plan.shared = trainer_.shared_prompt_forward && !value_model_;
  // A completion with advantage exactly 0, or out of the loss, adds nothing
  // to it when nothing else is (see GrpoConfig::skip_zero_advantage).
  const bool skip_zero_advantage = config_.skip_zero_advantage && !config_.uses_reference_model() &&
                                   config_.entropy_coeff == 0.0 && !value_model_;
  const LossNormalizer local_normalizer =
      count_loss_normalizer(samples, begin, end, config_.max_completion_length);
  // The rows the forward and backward run on: all of them, or without the
  // ones that add nothing to the loss. The normaliser still counts them all.
  const std::vector<TrainingSample>* rows = &samples;
  size_t rows_begin = begin, rows_end = end;
  if (skip_zero_advantage || plan.shared) {
    for (size_t i = begin; i < end; ++i) {
      const TrainingSample& sample = samples[i];
      const bool empty = static_cast<int64_t>(sample.tokens.size()) <= sample.prompt_length;
      if (empty || (skip_zero_advantage && (!sample.in_loss || sample.advantage == 0.0f))) continue;
      plan.trained.push_back(sample);
    }
    skipped_rows += static_cast<double>(end - begin - plan.trained.size());
    rows = &plan.trained;
    rows_begin = 0;
    rows_end = plan.trained.size();
  }
  // Lanes get equal shares of the tokens their linear layers see: each
  // distinct prompt once on the shared-prompt path, padded rows otherwise.
  auto linear_tokens = [&](size_t a, size_t b) {
    double tokens = 0;
    size_t longest = 0;
    for (size_t i = a; i < b; ++i) {
      const PromptAndCompletion row = row_of((*rows)[i]);
      longest = std::max(longest, row.tokens.size());
      const bool shares_prompt = i > a && same_prompt(row_of((*rows)[i - 1]), row);
      tokens += static_cast<double>(row.tokens.size() - (shares_prompt ? row.prompt_length : 0));
    }
    return plan.shared ? tokens : static_cast<double>(longest * (b - a));
  };
  const auto ranges = lanes_.spread(
      plan_micro_batches(*rows, rows_begin, rows_end, trainer_.max_tokens_per_microbatch),
      linear_tokens);
  for (const auto& [a, b] : ranges) {
    if (!plan.shared) {
      plan.batches.push_back(make_micro_batch(*rows, a, b));
      continue;
    }
    plan.batches.push_back(make_completion_micro_batch(*rows, a, b));
    std::vector<PromptAndCompletion> sequences;
    for (size_t i = a; i < b; ++i) sequences.push_back(row_of((*rows)[i]));
    plan.packed.push_back(make_shared_prefix_batch(sequences));
  }
  at::Tensor counts =
      at::tensor({local_normalizer.tokens, local_normalizer.sequences}, at::kDouble);
  distributed_.all_reduce_sum(counts);
  plan.normalizer = {counts[0].item<double>(), counts[1].item<double>(),
                     config_.max_completion_length};
  return plan;
}

// Final hidden states of every target of micro-batch `index`: (B, C, H) on the
// shared-prompt path, (B, L-1, H) for padded rows.
at::Tensor Learner::target_hidden(Transformer& network, const MiniBatchPlan& plan, int64_t index) {
  AutocastGuard autocast(device_, at::kBFloat16, trainer_.bf16);
  if (plan.shared) return shared_prefix_hidden(*network, plan.packed[index]);
  const MicroBatch& batch = plan.batches[index];
  at::Tensor all = network->forward_hidden(batch.tokens, batch.attention_mask);
  return all.narrow(1, 0, all.size(1) - 1);
}

// Log-probs (and entropy) of `targets` under `network`, in logit blocks
// (learner/hidden_logprobs.h): never the whole micro-batch's logits at once.
HiddenLogprobs Learner::target_logprobs(Transformer& network, const MiniBatchPlan& plan,
                                        int64_t index, const at::Tensor& targets,
                                        bool with_entropy) {
  const at::Tensor hidden = target_hidden(network, plan, index);
  const std::optional<at::ScalarType> matmul_dtype =
      trainer_.bf16 ? std::optional(at::kBFloat16) : std::nullopt;
  return hidden_logprobs(hidden, network->output_weight(), targets, config_.temperature,
                         with_entropy, matmul_dtype);
}

std::vector<at::Tensor> Learner::micro_batch_gradients(MiniBatchPlan& plan, int64_t index) {
  MicroBatch& batch = plan.batches[index];
  at::Tensor targets;
  if (plan.shared) {
    plan.packed[index] = plan.packed[index].to(device_);
    targets = plan.packed[index].targets;  // (B, C)
  } else {
    batch.tokens = batch.tokens.to(device_);
    batch.attention_mask = batch.attention_mask.to(device_);
    targets = batch.tokens.narrow(1, 1, batch.tokens.size(1) - 1);  // (B, L-1)
  }
  // Log-probs and entropy are float32 whatever the forward ran in. The entropy
  // is only logged (no gradient) unless it has a coefficient in the loss.
  HiddenLogprobs policy = target_logprobs(policy_, plan, index, targets, /*with_entropy=*/true);
  PolicyLossInputs inputs;
  inputs.logprobs = policy.logprobs;
  inputs.old_logprobs = batch.old_logprobs.to(device_);
  if (batch.learner_old_logprobs.defined())
    inputs.learner_old_logprobs = batch.learner_old_logprobs.to(device_);
  inputs.advantages =
      (batch.token_advantages.defined() ? batch.token_advantages : batch.advantages).to(device_);
  inputs.mask = batch.loss_mask.to(device_);
  inputs.entropy = config_.entropy_coeff != 0.0 ? policy.entropy : policy.entropy.detach();
  if (reference_ || reference_is_base_) {
    at::NoGradGuard no_grad;
    LoraDisabled base_model;  // without a copy the reference is the policy's LoRA base
    inputs.ref_logprobs =
        target_logprobs(reference_ ? reference_ : policy_, plan, index, targets, false).logprobs;
  }
  PolicyLossOutput output = policy_loss(inputs, config_, plan.normalizer);
  plan.sums[index] = output.sums;
  plan.losses[index] = output.loss.detach();
  plan.corrections[index] = output.rollout;
  std::vector<at::Tensor> gradients(plan.parameters.size());
  gradients_into(gradients, output.loss, plan.parameters, 0, plan.policy_parameters);
  if (value_model_ && batch.old_values.defined()) {
    ValueLossOutput value =
        value_model_->loss(batch.tokens, batch.attention_mask, batch, inputs.mask, plan.normalizer);
    gradients_into(gradients, value.loss, plan.parameters, plan.policy_parameters,
                   plan.parameters.size());
    plan.values[index] = {value.loss.item<double>(), value.tokens, value.clipped};
  }
  return gradients;
}

void Learner::compute_learner_old_logprobs(std::vector<TrainingSample>& samples) {
  at::NoGradGuard no_grad;
  for (const auto& [begin, end] :
       plan_micro_batches(samples, 0, samples.size(), trainer_.max_tokens_per_microbatch)) {
    MiniBatchPlan plan;
    plan.batches.push_back(make_micro_batch(samples, begin, end));
    MicroBatch& batch = plan.batches.front();
    batch.tokens = batch.tokens.to(device_);
    batch.attention_mask = batch.attention_mask.to(device_);
    const at::Tensor targets = batch.tokens.narrow(1, 1, batch.tokens.size(1) - 1);  // (B, L-1)
    const at::Tensor logprobs =                                                      // (B, L-1)
        target_logprobs(policy_, plan, 0, targets, /*with_entropy=*/false)
            .logprobs.to(at::kCPU, at::kFloat)
            .contiguous();
    for (size_t i = begin; i < end; ++i) {
      TrainingSample& sample = samples[i];
      const int64_t completion = static_cast<int64_t>(sample.tokens.size()) - sample.prompt_length;
      if (completion <= 0) continue;
      // Completion token t is the target of position prompt_length - 1 + t.
      const float* row =
          logprobs[static_cast<int64_t>(i - begin)].data_ptr<float>() + (sample.prompt_length - 1);
      sample.learner_old_logprobs.assign(row, row + completion);
    }
  }
}

void Learner::step_optimizer(LearnerStats& stats, const MiniBatchPlan& plan) {
  std::vector<at::Tensor> gradients;
  for (auto& parameter : policy_->parameters()) {
    if (!parameter.requires_grad()) continue;  // frozen (a LoRA base): no gradient, no state
    if (!parameter.grad().defined()) parameter.mutable_grad() = at::zeros_like(parameter);
    gradients.push_back(parameter.grad());
  }
  distributed_.all_reduce_sum(gradients);
  OptimizerStepStats step;
  try {
    weights_->publish([&](Transformer&) { step = optimizer_->step(); });
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "; " + nonfinite_cause(plan.losses, plan.sums), e.kind());
  }
  stats.grad_norm += step.grad_norm;
  stats.learning_rate = step.learning_rate;
  stats.skipped_updates += step.skipped;
  stats.skipped_updates_total = optimizer_->skipped_total();
  ++optimizer_steps_;
  if (step.skipped) {
    log_warning() << "non-finite gradient norm (" << step.grad_norm << "): update skipped, "
                  << optimizer_->consecutive_skips() << " in a row; "
                  << nonfinite_cause(plan.losses, plan.sums);
  }
}

void Learner::release_gradients() { optimizer_->zero_grad(); }

void Learner::sync_reference(int64_t step) {
  if (reference_ && config_.ref_model_sync_steps > 0 && step % config_.ref_model_sync_steps == 0)
    reference_ = frozen_copy(policy_);
}

void Learner::add_to(RunCheckpoint& checkpoint) {
  checkpoint.optimizer = optimizer_.get();
  if (reference_ && config_.ref_model_sync_steps > 0)
    checkpoint.extra_models.emplace("reference", reference_);
}

void Learner::restore(const std::filesystem::path& checkpoint_folder) {
  optimizer_->load(checkpoint_folder / "optimizer");
  if (reference_ && std::filesystem::exists(checkpoint_folder / "reference"))
    load_weights_into(reference_, checkpoint_folder / "reference");
}

}  // namespace r1kit
