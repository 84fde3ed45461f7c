#include "learner/policy_loss.h"

#include <ATen/core/grad_mode.h>

#include "common/error.h"
#include "learner/policy_objective.h"

namespace r1kit {
namespace {

double masked_sum(const at::Tensor& values, const at::Tensor& mask) {
  return (values.detach().to(at::kDouble) * mask.to(at::kDouble)).sum().item<double>();
}

void check_same_shape(const at::Tensor& tensor, const at::Tensor& like, const char* name) {
  TORCH_CHECK(tensor.defined(), "policy_loss: ", name, " is undefined");
  TORCH_CHECK(tensor.sizes() == like.sizes(), "policy_loss: ", name, " has shape ", tensor.sizes(),
              ", expected ", like.sizes());
}

}  // namespace

PolicyLossSums& PolicyLossSums::operator+=(const PolicyLossSums& other) {
  tokens += other.tokens;
  clipped_low += other.clipped_low;
  clipped_high += other.clipped_high;
  clipped += other.clipped;
  dual_clipped += other.dual_clipped;
  kl += other.kl;
  entropy += other.entropy;
  ratio += other.ratio;
  approx_kl_old += other.approx_kl_old;
  return *this;
}

PolicyLossOutput policy_loss(const PolicyLossInputs& inputs, const GrpoConfig& config,
                             const LossNormalizer& normalizer) {
  const at::Tensor& logp = inputs.logprobs;  // (B, T)
  TORCH_CHECK(logp.defined() && logp.dim() == 2, "policy_loss: logprobs must be (B, T)");
  check_same_shape(inputs.old_logprobs, logp, "old_logprobs");
  check_same_shape(inputs.mask, logp, "mask");
  const at::Tensor mask = inputs.mask.to(logp.scalar_type());
  at::Tensor advantages = inputs.advantages;  // -> (B, 1) or (B, T)
  TORCH_CHECK(advantages.defined(), "policy_loss: advantages are undefined");
  if (advantages.dim() == 1) {
    TORCH_CHECK(advantages.size(0) == logp.size(0), "policy_loss: advantages (", advantages.size(0),
                ") must have one value per row (", logp.size(0), ")");
    advantages = advantages.unsqueeze(1);
  } else {
    check_same_shape(advantages, logp, "advantages");
  }
  advantages = advantages.detach().to(logp.scalar_type());

  // pi_old: the behaviour policy, or under a rollout correction the learner's own
  // log-probs, the rollout's then entering only the correction's weight.
  const at::Tensor learner_old =
      inputs.learner_old_logprobs.defined() ? inputs.learner_old_logprobs : logp.detach();
  check_same_shape(learner_old, logp, "learner_old_logprobs");
  const RolloutCorrection correction =
      rollout_correction(learner_old, inputs.old_logprobs, mask, config.rollout_correction);
  const at::Tensor& old = config.rollout_correction.enabled() ? learner_old : inputs.old_logprobs;

  // Importance ratio against pi_old; log_ratio and log_weight are (B, T).
  at::Tensor log_ratio = (logp - old.detach()).clamp(-kMaxLogRatio, kMaxLogRatio);
  at::Tensor log_weight;
  if (config.importance_sampling_level == "sequence") {
    // GSPO: the length-normalised sequence log-ratio, carried by every token with
    // the gradient of that token's own log-prob.
    at::Tensor lengths = mask.sum(-1, /*keepdim=*/true).clamp_min(1.0);                   // (B, 1)
    at::Tensor sequence_log_ratio = (log_ratio.detach() * mask).sum(-1, true) / lengths;  // (B, 1)
    log_weight = sequence_log_ratio + (logp - logp.detach());
  } else if (config.importance_sampling_level == "token") {
    log_weight = log_ratio;
  } else {
    throw_config_error("importance_sampling_level: unknown \"" + config.importance_sampling_level +
                       "\"; known: token, sequence");
  }
  at::Tensor ratio = log_weight.exp();  // (B, T)

  PolicyObjectiveInputs objective_inputs{logp, ratio, advantages, &config};
  const PolicyObjectiveTerms terms = policy_objective_registry().get(
      config.objective(), "grpo.policy_objective")(objective_inputs);
  TORCH_CHECK(terms.per_token_loss.defined() && terms.per_token_loss.sizes() == logp.sizes(),
              "policy_loss: objective ", config.objective(), " must give a (B, T) per-token loss");
  at::Tensor per_token = terms.per_token_loss;  // (B, T)
  if (correction.weights.defined()) per_token = per_token * correction.weights;

  at::Tensor kl;  // (B, T) or undefined
  if (inputs.ref_logprobs.defined()) {
    check_same_shape(inputs.ref_logprobs, logp, "ref_logprobs");
    kl = kl_penalty(logp, inputs.ref_logprobs.detach(), config.kl_estimator());
  }
  if (config.beta != 0.0) {
    TORCH_CHECK(kl.defined(), "policy_loss: beta = ", config.beta, " needs ref_logprobs");
    per_token = per_token + config.beta * kl;
  }
  if (inputs.entropy.defined()) check_same_shape(inputs.entropy, logp, "entropy");
  if (config.entropy_coeff != 0.0) {
    TORCH_CHECK(inputs.entropy.defined(), "policy_loss: entropy_coeff = ", config.entropy_coeff,
                " needs entropy");
    per_token = per_token - config.entropy_coeff * inputs.entropy;
  }

  PolicyLossOutput out;
  out.loss = aggregate_loss(per_token, mask, config.loss_aggregation(), normalizer);

  // Metrics: every masked sum in one tensor, read back with a single device sync.
  at::NoGradGuard no_grad;
  const at::Tensor m = mask.to(at::kDouble);
  auto sum_of = [&](const at::Tensor& values) { return (values.to(at::kDouble) * m).sum(); };
  const at::Tensor ratio_value = ratio.detach();
  const at::Tensor zero = at::zeros({}, m.options());
  auto count_of = [&](const at::Tensor& where) { return where.defined() ? sum_of(where) : zero; };
  const at::Tensor either =
      terms.clipped_low.defined() && terms.clipped_high.defined()
          ? terms.clipped_low | terms.clipped_high
          : (terms.clipped_low.defined() ? terms.clipped_low : terms.clipped_high);
  const at::Tensor totals =
      at::cat({at::stack({m.sum(), count_of(terms.clipped_low), count_of(terms.clipped_high),
                          count_of(either), count_of(terms.dual_clipped),
                          kl.defined() ? sum_of(kl.detach()) : zero,
                          inputs.entropy.defined() ? sum_of(inputs.entropy.detach()) : zero,
                          sum_of(ratio_value), sum_of(old - logp.detach())}),
               correction.totals.to(m.device())})
          .cpu();
  const double* t = totals.data_ptr<double>();
  PolicyLossSums& sums = out.sums;
  sums.tokens = t[0];
  sums.clipped_low = t[1];
  sums.clipped_high = t[2];
  sums.clipped = t[3];
  sums.dual_clipped = t[4];
  sums.kl = t[5];
  sums.entropy = t[6];
  sums.ratio = t[7];
  sums.approx_kl_old = t[8];
  out.rollout = rollout_correction_sums(totals.narrow(0, 9, totals.size(0) - 9));

  out.clip_ratio_low = sums.mean(sums.clipped_low);
  out.clip_ratio_high = sums.mean(sums.clipped_high);
  out.clip_ratio = sums.mean(sums.clipped);
  out.dual_clip_ratio = sums.mean(sums.dual_clipped);
  out.kl_mean = sums.mean(sums.kl);
  out.entropy_mean = sums.mean(sums.entropy);
  out.ratio_mean = sums.mean(sums.ratio);
  return out;
}

ValueLossOutput value_loss(const at::Tensor& values, const at::Tensor& old_values,
                           const at::Tensor& returns, const at::Tensor& mask,
                           const GrpoConfig& config, const LossNormalizer& normalizer) {
  TORCH_CHECK(values.dim() == 2, "value_loss: values must be (B, T), got ", values.sizes());
  TORCH_CHECK(old_values.sizes() == values.sizes() && returns.sizes() == values.sizes() &&
                  mask.sizes() == values.sizes(),
              "value_loss: values ", values.sizes(), ", old_values ", old_values.sizes(),
              ", returns ", returns.sizes(), " and mask ", mask.sizes(), " must have one shape");
  at::Tensor old = old_values.detach();
  at::Tensor target = returns.detach();
  at::Tensor m = mask.to(values.scalar_type());
  at::Tensor clipped_values =
      old + (values - old).clamp(-config.cliprange_value, config.cliprange_value);
  at::Tensor unclipped_loss = (values - target).square();
  at::Tensor clipped_loss = (clipped_values - target).square();
  at::Tensor per_token = at::maximum(unclipped_loss, clipped_loss);  // (B, T)

  ValueLossOutput out;
  out.loss = config.vf_coef * aggregate_loss(per_token, m, "token_mean", normalizer);
  at::NoGradGuard no_grad;
  out.tokens = m.to(at::kDouble).sum().item<double>();
  out.clipped = masked_sum((clipped_loss > unclipped_loss).to(at::kDouble), m);
  out.clip_fraction = out.tokens > 0.0 ? out.clipped / out.tokens : 0.0;
  return out;
}

}  // namespace r1kit
