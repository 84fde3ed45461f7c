// bfloat16 matmuls of the decode plan on CPUs with AVX512-BF16 (vdpbf16ps)
// and no AMX: at the rows of a decode step or a short prefill oneDNN's packed
// linear spends more time on its fixed cost per call than on the arithmetic.
// The weight is packed once per weight version into the pair-interleaved
// layout vdpbf16ps reads; a call accumulates in float32 and rounds to
// bfloat16 once, with the bias and a residual added before that rounding.
// Stateless; the calling thread computes, parallel over column blocks with
// ATen's thread pool when the thread has several threads.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace r1kit {

// True when the CPU has AVX512-BF16 (and the AVX-512 F/BW/DQ the kernel uses).
bool avx512_bf16_available();

// weight (N, K) bfloat16 -> (ceil(N / 16), ceil(K / 2), 16, 2): for each block
// of 16 output columns and each pair of inputs, the 16 columns' two weights
// side by side; zero-padded to whole blocks and pairs.
at::Tensor avx512_bf16_pack(const at::Tensor& weight);

// x (M, K) bfloat16 times weight^T, plus bias (N) and residual (M, N) where
// defined (bfloat16): (M, N) bfloat16. `packed` comes from avx512_bf16_pack
// of a (N, K) weight; `out_features` is that N.
at::Tensor avx512_bf16_linear(const at::Tensor& x, const at::Tensor& packed, int64_t out_features,
                              const at::Tensor& bias, const at::Tensor& residual);

}  // namespace r1kit
