// Differentiable fused RMSNorm, rotary embedding and SwiGLU product for the
// learner's forward (policy/shared_prefix.h): one pass forward and one pass
// backward each, where ATen's plain expressions take up to five ops forward
// and ten backward. On
// CPU float32 with AVX-512; anything else takes the plain expressions of
// decoder_layer.cpp. Single-threaded kernels (the learner's lanes are); any thread.
#pragma once

#include <ATen/ATen.h>

namespace r1kit {

// weight * (x / sqrt(mean(x^2) + eps)): x (N, H), weight (H) -> (N, H), as
// RmsNormImpl::forward, with gradients for x and weight.
at::Tensor rms_norm_trainable(const at::Tensor& x, const at::Tensor& weight, double eps);

// x (N, heads, D) -> x * cos + rotate_half(x) * sin, (N, heads, D), as
// apply_rotary; cos and sin (N, D) carry no gradient.
at::Tensor rotary_trainable(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// silu(gate) * up, gate and up (N, I) -> (N, I), as MlpImpl::forward, with
// gradients for both.
at::Tensor swiglu_trainable(const at::Tensor& gate, const at::Tensor& up);

}  // namespace r1kit
