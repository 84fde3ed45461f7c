#include "learner/logprobs.h"

namespace r1kit {
namespace {

// logits / temperature in float32; temperature 0 (greedy) and 1 leave the
// logits as they are, like the sampler.
at::Tensor scaled_logits(const at::Tensor& logits, double temperature) {
  TORCH_CHECK(temperature >= 0.0, "temperature must be >= 0, got ", temperature);
  at::Tensor logits32 = logits.to(at::kFloat);
  if (temperature == 0.0 || temperature == 1.0) return logits32;
  return logits32 / temperature;
}

}  // namespace

at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets, double temperature) {
  TORCH_CHECK(logits.dim() == 3, "token_logprobs: logits must be (B, T, V), got ", logits.sizes());
  TORCH_CHECK(
      targets.dim() == 2 && targets.size(0) == logits.size(0) && targets.size(1) == logits.size(1),
      "token_logprobs: targets ", targets.sizes(), " do not match logits ", logits.sizes());
  at::Tensor scaled = scaled_logits(logits, temperature);  // (B, T, V)
  at::Tensor chosen = scaled.gather(-1, targets.to(at::kLong).unsqueeze(-1)).squeeze(-1);  // (B, T)
  return chosen - scaled.logsumexp(-1);
}

at::Tensor token_entropy(const at::Tensor& logits, double temperature) {
  TORCH_CHECK(logits.dim() == 3, "token_entropy: logits must be (B, T, V), got ", logits.sizes());
  at::Tensor scaled = scaled_logits(logits, temperature);  // (B, T, V)
  // H = logsumexp(z) - sum_v p_v z_v, which never takes the log of a zero probability.
  at::Tensor probs = scaled.softmax(-1);
  return scaled.logsumexp(-1) - (probs * scaled).sum(-1);
}

}  // namespace r1kit
