// A scalar head over the backbone's hidden states: the learned reward model's
// `score` (Hugging Face AutoModelForSequenceClassification with num_labels = 1,
// no bias, read at the last real token; Ouyang et al. 2022) or the PPO value
// model's `v_head.summary` (TRL's AutoModelForCausalLMWithValueHead, with bias).
// Parameter names are those checkpoint names; saved and loaded with the model
// by checkpoint.h. A module: one thread at a time.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

namespace r1kit {

enum class ScalarHeadKind {
  kReward,  // score.weight (1, H)
  kValue,   // v_head.summary.weight (1, H), v_head.summary.bias (1)
};

// "reward" or "value"; anything else is a config error listing both.
ScalarHeadKind scalar_head_kind_from_name(const std::string& name);
std::string scalar_head_kind_name(ScalarHeadKind kind);

class ScalarHeadImpl : public torch::nn::Module {
 public:
  // Initialised like Hugging Face's _init_weights: normal(0, 0.02), zero bias,
  // drawn from torch's default generator.
  ScalarHeadImpl(ScalarHeadKind kind, int64_t hidden_size);

  // hidden (B, T, H) -> per-token scalars (B, T) float32 (values for PPO).
  at::Tensor forward(const at::Tensor& hidden);
  // hidden (B, T, H), attention_mask (B, T) -> (B) float32: the scalar at each
  // row's last real token (the reward model's score), either padding side.
  at::Tensor at_last_token(const at::Tensor& hidden, const at::Tensor& attention_mask);

  ScalarHeadKind kind() const { return kind_; }

  torch::nn::Linear linear{nullptr};  // (H) -> (1)

 private:
  ScalarHeadKind kind_;
};
TORCH_MODULE(ScalarHead);

// Index (B) of the last real token of each row of a mask (B, T).
at::Tensor last_real_token(const at::Tensor& attention_mask);

}  // namespace r1kit
