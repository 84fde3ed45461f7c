#include "learner/kl_estimator.h"

namespace r1kit {

Registry<KlEstimator>& kl_estimator_registry() {
  static Registry<KlEstimator> registry("KL estimator");
  return registry;
}

at::Tensor kl_penalty(const at::Tensor& logprobs, const at::Tensor& ref_logprobs,
                      const std::string& estimator) {
  KlEstimator estimate = kl_estimator_registry().get(estimator);
  at::Tensor d = ref_logprobs - logprobs;  // log(ref / pi) at the sampled token
  return estimate(d);
}

namespace {

// Unbiased, high variance: the log-ratio itself.
at::Tensor k1(const at::Tensor& d) { return -d; }

// Biased, low variance: half the squared log-ratio.
at::Tensor k2(const at::Tensor& d) { return 0.5 * d.square(); }

// Unbiased and low variance, never negative (verl's low_var_kl, with its bounds).
at::Tensor k3(const at::Tensor& d) {
  at::Tensor bounded = d.clamp(-kMaxLogRatio, kMaxLogRatio);
  return (bounded.exp() - bounded - 1.0).clamp(-10.0, 10.0);
}

}  // namespace

REGISTER_KL_ESTIMATOR("k1", k1);
REGISTER_KL_ESTIMATOR("k2", k2);
REGISTER_KL_ESTIMATOR("k3", k3);

}  // namespace r1kit
