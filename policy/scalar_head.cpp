#include "policy/scalar_head.h"

#include "common/error.h"

namespace r1kit {

ScalarHeadKind scalar_head_kind_from_name(const std::string& name) {
  if (name == "reward") return ScalarHeadKind::kReward;
  if (name == "value") return ScalarHeadKind::kValue;
  throw_config_error("unknown scalar head \"" + name + "\" (known: reward, value)");
}

std::string scalar_head_kind_name(ScalarHeadKind kind) {
  return kind == ScalarHeadKind::kReward ? "reward" : "value";
}

ScalarHeadImpl::ScalarHeadImpl(ScalarHeadKind kind, int64_t hidden_size) : kind_(kind) {
  const bool bias = kind == ScalarHeadKind::kValue;
  linear = torch::nn::Linear(torch::nn::LinearOptions(hidden_size, 1).bias(bias));
  {
    at::NoGradGuard no_grad;
    linear->weight.normal_(0.0, 0.02);
    if (bias) linear->bias.zero_();
  }
  if (kind == ScalarHeadKind::kReward) {
    register_module("score", linear);
  } else {
    // TRL nests the linear layer: v_head.summary.{weight,bias}.
    auto v_head = std::make_shared<torch::nn::Module>("ValueHead");
    v_head->register_module("summary", linear);
    register_module("v_head", v_head);
  }
}

at::Tensor ScalarHeadImpl::forward(const at::Tensor& hidden) {
  return linear(hidden).squeeze(-1).to(at::kFloat);  // (B, T)
}

at::Tensor last_real_token(const at::Tensor& attention_mask) {
  const int64_t length = attention_mask.size(-1);
  const at::Tensor steps = at::arange(1, length + 1, attention_mask.options().dtype(at::kLong));
  return (attention_mask.to(at::kLong) * steps).argmax(-1);  // (B)
}

at::Tensor ScalarHeadImpl::at_last_token(const at::Tensor& hidden,
                                         const at::Tensor& attention_mask) {
  const at::Tensor last = last_real_token(attention_mask);  // (B)
  const at::Tensor rows = at::arange(hidden.size(0), last.options());
  return forward(hidden.index({rows, last}).unsqueeze(1)).squeeze(1);  // (B)
}

}  // namespace r1kit
