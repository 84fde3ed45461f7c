#include "learner/lm_loss.h"

#include <ATen/ops/cross_entropy_loss.h>

#include "learner/hidden_logprobs.h"

namespace r1kit {

LmLoss lm_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& weights) {
  TORCH_CHECK(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
                  logits.size(1) == targets.size(1) && weights.sizes() == targets.sizes(),
              "lm_loss: logits ", logits.sizes(), ", targets ", targets.sizes(), ", weights ",
              weights.sizes());
  const int64_t vocab = logits.size(2);
  at::Tensor keep = weights.to(at::kBool).reshape({-1});                                // (B*T)
  at::Tensor flat_targets = targets.reshape({-1}).masked_fill(~keep, 0).to(at::kLong);  // (B*T)
  at::Tensor nll = at::cross_entropy_loss(logits.reshape({-1, vocab}).to(at::kFloat), flat_targets,
                                          /*weight=*/{}, at::Reduction::None);  // (B*T)
  at::Tensor sum = (nll * keep.to(at::kFloat)).sum();
  int64_t tokens = keep.sum().item<int64_t>();
  at::Tensor loss = tokens > 0 ? sum / static_cast<double>(tokens) : sum * 0.0;
  return {loss, sum, tokens};
}

LmLoss causal_lm_loss(const at::Tensor& logits, const at::Tensor& tokens,
                      const at::Tensor& loss_mask) {
  TORCH_CHECK(logits.dim() == 3 && tokens.dim() == 2 && logits.size(1) == tokens.size(1) &&
                  loss_mask.sizes() == tokens.sizes(),
              "causal_lm_loss: logits ", logits.sizes(), ", tokens ", tokens.sizes(),
              ", loss_mask ", loss_mask.sizes());
  const int64_t length = tokens.size(1);
  return lm_loss(logits.narrow(1, 0, length - 1), tokens.narrow(1, 1, length - 1),
                 loss_mask.narrow(1, 1, length - 1));
}

LmLoss lm_loss_from_hidden(const at::Tensor& hidden, const at::Tensor& output_weight,
                           const at::Tensor& targets, const at::Tensor& weights) {
  TORCH_CHECK(hidden.dim() == 3 && targets.dim() == 2 && hidden.size(0) == targets.size(0) &&
                  hidden.size(1) == targets.size(1) && weights.sizes() == targets.sizes(),
              "lm_loss_from_hidden: hidden ", hidden.sizes(), ", targets ", targets.sizes(),
              ", weights ", weights.sizes());
  const at::Tensor keep = weights.to(at::kBool);  // (B, T)
  const at::Tensor safe_targets = targets.masked_fill(~keep, 0).to(at::kLong);
  const at::Tensor nll =
      -hidden_logprobs(hidden, output_weight, safe_targets, /*temperature=*/1.0, false).logprobs;
  at::Tensor sum = (nll * keep.to(at::kFloat)).sum();
  int64_t tokens = keep.sum().item<int64_t>();
  at::Tensor loss = tokens > 0 ? sum / static_cast<double>(tokens) : sum * 0.0;
  return {loss, sum, tokens};
}

LmLoss causal_lm_loss(TransformerImpl& model, const at::Tensor& tokens,
                      const at::Tensor& attention_mask, const at::Tensor& loss_mask) {
  TORCH_CHECK(tokens.dim() == 2 && loss_mask.sizes() == tokens.sizes(), "causal_lm_loss: tokens ",
              tokens.sizes(), ", loss_mask ", loss_mask.sizes());
  const int64_t length = tokens.size(1);
  const at::Tensor hidden = model.forward_hidden(tokens, attention_mask);  // (B, T, H)
  return lm_loss_from_hidden(hidden.narrow(1, 0, length - 1), model.output_weight(),
                             tokens.narrow(1, 1, length - 1), loss_mask.narrow(1, 1, length - 1));
}

}  // namespace r1kit
