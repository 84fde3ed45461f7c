// KL estimators: the per-token estimate of KL(pi || ref) from the log-ratio at
// the sampled token (Schulman 2020, "Approximating KL Divergence"). A registry
// of small functions, one REGISTER_KL_ESTIMATOR line each, named by
// grpo.kl_loss_type. Pure functions; any thread.
//
//   at::Tensor half_k1(const at::Tensor& log_ratio) { return -0.5 * log_ratio; }
//   REGISTER_KL_ESTIMATOR("half_k1", half_k1);
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>

#include "common/registry.h"

namespace r1kit {

// verl's bound on log-ratios before exp: keeps a far-off token finite.
inline constexpr double kMaxLogRatio = 20.0;

// One estimator: log_ratio = ref_logprobs - logprobs = log(ref / pi) at the
// sampled token (B, T) to the per-token estimate (B, T). Differentiable in
// log_ratio.
using KlEstimator = std::function<at::Tensor(const at::Tensor& log_ratio)>;

// The estimator registry: REGISTER_KL_ESTIMATOR lines add to it.
Registry<KlEstimator>& kl_estimator_registry();

// The per-token KL estimate of pi against ref from log-probs (B, T), with
// d = ref - logp:
//   k1 = -d;  k2 = d^2 / 2;  k3 = exp(d) - d - 1 (verl low_var_kl: d clamped
//   to [-20, 20], the result to [-10, 10]). `estimator` is a registered name
//   (k1, k2, k3, or a plugin's); an unknown one is the registry's config error.
at::Tensor kl_penalty(const at::Tensor& logprobs, const at::Tensor& ref_logprobs,
                      const std::string& estimator);

}  // namespace r1kit

// Registers `estimator` (callable as a KlEstimator) as `name` at load time.
#define REGISTER_KL_ESTIMATOR(name, estimator) \
  R1KIT_REGISTER(::r1kit::kl_estimator_registry(), name, estimator)
