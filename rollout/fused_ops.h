// Fused elementwise steps of the decode plan: RMSNorm's normalisation, the
// rotary embedding of q and k, and SwiGLU's silu(gate) * up, each one pass
// over the data in float32 arithmetic (AVX-512 kernels on CPUs that have it,
// the equivalent ATen expressions elsewhere). Stateless; parallel over rows
// with ATen's thread pool.
#pragma once

#include <ATen/ATen.h>

namespace r1kit {

// x (N, H) -> x / sqrt(mean(x^2) + eps) in x's dtype, the statistics in
// float32 (Zhang & Sennrich 2019, as Hugging Face's LlamaRMSNorm).
at::Tensor rms_normalize(const at::Tensor& x, double eps);

// x (N, heads, D) with unit inner stride -> x * cos + swap_halves(x) * sin,
// contiguous (N, heads, D); cos and sin (N, D) in x's dtype, sin already
// carrying rotate_half's sign (negative first half). RoFormer (Su et al. 2021).
at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& signed_sin);

// gate_up (N, 2 I) = [gate | up] -> silu(gate) * up (N, I) (Shazeer 2020).
at::Tensor silu_mul(const at::Tensor& gate_up);

}  // namespace r1kit
