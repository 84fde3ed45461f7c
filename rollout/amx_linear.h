// bfloat16 matmuls of a few rows on Intel AMX tiles, for the decode plan: at
// the 1-64 rows of a decode step oneDNN's packed linear spends ~20 µs of fixed
// cost per call (measured at M = 1), more than the arithmetic. The weights are
// packed once into AMX's pair-interleaved tile layout; a call streams them
// once, accumulates in float32 and rounds to bfloat16 once. Stateless; the
// calling thread computes (one engine per core), parallel over column blocks
// when the thread has several.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace r1kit {

// True when the CPU has AMX-BF16 and Linux grants this process the tile state.
bool amx_available();

// Whether amx_pack takes a (N, K) weight: bfloat16, K a multiple of 32, N of 32.
bool amx_fits(const at::Tensor& weight);

// weight (N, K) bfloat16 -> the tile layout (N / 16, K / 32, 16, 32).
at::Tensor amx_pack(const at::Tensor& weight);

// x (M, K) bfloat16 times weight^T, plus residual (M, N) when defined:
// (M, N) bfloat16. `packed` comes from amx_pack of a (N, K) weight.
at::Tensor amx_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& residual);

}  // namespace r1kit
