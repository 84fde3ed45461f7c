#include "rollout/avx512_bf16_linear.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/avx512_math.h"

namespace r1kit {

#ifdef R1KIT_HAVE_AVX512_KERNEL
// GCC 12 also reports -Wuninitialized on the _mm512_undefined_* operands of
// the shift and narrowing intrinsics it inlines here (GCC PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
namespace {

#define R1KIT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

constexpr int64_t kBlock = 16;      // output columns per block (one zmm of float32)
constexpr int kMaxRows = 6;         // rows of x per micro-kernel call
constexpr int kMaxBlocks = 4;       // column blocks per micro-kernel call (a panel)
constexpr int64_t kRowChunk = 120;  // rows per pass over the panels (x stays in L2)

// What a micro-kernel adds before rounding and where it writes: rows
// [row0, row0 + kRows) and column blocks [block0, block0 + kBlocks).
struct Epilogue {
  const c10::BFloat16* bias;      // (N) or null
  const c10::BFloat16* residual;  // (M, N) or null
  c10::BFloat16* out;             // (M, N)
  int64_t n;
};

// 16 bfloat16 values (the first `mask` lanes) widened to float32.
R1KIT_AVX512_BF16 inline __m512 load_masked(const c10::BFloat16* p, __mmask16 mask) {
  const __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// Round to nearest even as c10::BFloat16 does (store16 of avx512_math.h), masked.
R1KIT_AVX512_BF16 inline void store_masked(c10::BFloat16* p, __m512 v, __mmask16 mask) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
  _mm256_mask_storeu_epi16(p, mask, _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
}

// out[rows][blocks] = bf16(x[rows] . w[blocks] + bias + residual): x rows of
// `pairs` bfloat16 pairs (row stride x_stride values), w the packed blocks
// (block stride block_stride values), float32 accumulators in registers.
template <int kRows, int kBlocks>
R1KIT_AVX512_BF16 void micro_kernel(const c10::BFloat16* x, int64_t x_stride,
                                    const c10::BFloat16* w, int64_t block_stride, int64_t pairs,
                                    const Epilogue& epilogue, int64_t row0, int64_t column0) {
  __m512 acc[kRows][kBlocks];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 8
    for (int j = 0; j < kBlocks; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh weights[kBlocks];
#pragma GCC unroll 8
    for (int j = 0; j < kBlocks; ++j) {
      weights[j] = (__m512bh)_mm512_loadu_si512(w + j * block_stride + p * 2 * kBlock);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      int32_t pair;
      std::memcpy(&pair, x + r * x_stride + 2 * p, sizeof(pair));
      const __m512bh broadcast = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 8
      for (int j = 0; j < kBlocks; ++j) {
        acc[r][j] = _mm512_dpbf16_ps(acc[r][j], broadcast, weights[j]);
      }
    }
  }
  const int64_t n = epilogue.n;
#pragma GCC unroll 8
  for (int j = 0; j < kBlocks; ++j) {
    const int64_t column = column0 + j * kBlock;
    const int64_t width = std::min<int64_t>(kBlock, n - column);
    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
    const __m512 bias =
        epilogue.bias ? load_masked(epilogue.bias + column, mask) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const int64_t offset = (row0 + r) * n + column;
      __m512 value = _mm512_add_ps(acc[r][j], bias);
      if (epilogue.residual)
        value = _mm512_add_ps(value, load_masked(epilogue.residual + offset, mask));
      store_masked(epilogue.out + offset, value, mask);
    }
  }
}

using MicroKernel = void (*)(const c10::BFloat16*, int64_t, const c10::BFloat16*, int64_t, int64_t,
                             const Epilogue&, int64_t, int64_t);

template <int kRows, size_t... kBlocksMinusOne>
constexpr std::array<MicroKernel, kMaxBlocks> kernels_of_rows(
    std::index_sequence<kBlocksMinusOne...>) {
  return {&micro_kernel<kRows, static_cast<int>(kBlocksMinusOne) + 1>...};
}

template <size_t... kRowsMinusOne>
constexpr std::array<std::array<MicroKernel, kMaxBlocks>, kMaxRows> kernel_table(
    std::index_sequence<kRowsMinusOne...>) {
  return {kernels_of_rows<static_cast<int>(kRowsMinusOne) + 1>(
      std::make_index_sequence<kMaxBlocks>())...};
}

// kKernels[rows - 1][blocks - 1].
constexpr auto kKernels = kernel_table(std::make_index_sequence<kMaxRows>());

}  // namespace

bool avx512_bf16_available() {
  static const bool available = cpu_has_avx512() && __builtin_cpu_supports("avx512vl") &&
                                __builtin_cpu_supports("avx512bf16");
  return available;
}

at::Tensor avx512_bf16_pack(const at::Tensor& weight) {
  TORCH_CHECK(
      weight.dim() == 2 && weight.scalar_type() == at::kBFloat16 && weight.device().is_cpu(),
      "avx512_bf16_pack: need a (N, K) bfloat16 CPU weight, got ", weight.sizes(), " ",
      weight.scalar_type());
  const int64_t n = weight.size(0), k = weight.size(1);
  const int64_t blocks = (n + kBlock - 1) / kBlock, pairs = (k + 1) / 2;
  const at::Tensor padded =
      at::constant_pad_nd(weight, {0, 2 * pairs - k, 0, blocks * kBlock - n}, 0);
  // (blocks, 16, pairs, 2) -> (blocks, pairs, 16, 2)
  return padded.view({blocks, kBlock, pairs, 2}).permute({0, 2, 1, 3}).contiguous();
}

at::Tensor avx512_bf16_linear(const at::Tensor& x, const at::Tensor& packed, int64_t out_features,
                              const at::Tensor& bias, const at::Tensor& residual) {
  TORCH_CHECK(avx512_bf16_available(), "avx512_bf16_linear: this CPU lacks AVX512-BF16");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kBFloat16 && packed.dim() == 4 &&
                  packed.scalar_type() == at::kBFloat16 && packed.is_contiguous() &&
                  (x.size(1) + 1) / 2 == packed.size(1) && packed.size(2) == kBlock &&
                  out_features > (packed.size(0) - 1) * kBlock &&
                  out_features <= packed.size(0) * kBlock,
              "avx512_bf16_linear: x ", x.sizes(), " ", x.scalar_type(), " does not fit packed ",
              packed.sizes(), " of ", out_features, " outputs");
  const int64_t rows = x.size(0), k = x.size(1), n = out_features;
  TORCH_CHECK(
      !bias.defined() ||
          (bias.numel() == n && bias.is_contiguous() && bias.scalar_type() == at::kBFloat16),
      "avx512_bf16_linear: bias ", bias.sizes(), " must be a contiguous bfloat16 (", n, ")");
  TORCH_CHECK(
      !residual.defined() || (residual.sizes() == at::IntArrayRef{rows, n} &&
                              residual.is_contiguous() && residual.scalar_type() == at::kBFloat16),
      "avx512_bf16_linear: residual ", residual.sizes(), " must be a contiguous bfloat16 (", rows,
      ", ", n, ")");
  at::Tensor out = at::empty({rows, n}, x.options());
  if (rows == 0) return out;
  // Each row is read as whole pairs: an odd K gets a zero after each row.
  at::Tensor x_rows = x.contiguous();
  if (k % 2 != 0) x_rows = at::constant_pad_nd(x_rows, {0, 1}, 0);
  const int64_t x_stride = x_rows.size(1), pairs = packed.size(1), blocks = packed.size(0);
  const int64_t block_stride = pairs * 2 * kBlock;
  const c10::BFloat16* x_data = x_rows.const_data_ptr<c10::BFloat16>();
  const c10::BFloat16* w_data = packed.const_data_ptr<c10::BFloat16>();
  const Epilogue epilogue{bias.defined() ? bias.const_data_ptr<c10::BFloat16>() : nullptr,
                          residual.defined() ? residual.const_data_ptr<c10::BFloat16>() : nullptr,
                          out.mutable_data_ptr<c10::BFloat16>(), n};
  // Threads split the column blocks evenly and walk their share in panels of
  // up to kMaxBlocks; a share is worth the fork only above ~256k multiply-adds.
  const int64_t block_work = std::max<int64_t>(rows * pairs * 2 * kBlock, 1);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / block_work);
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row_chunk = 0; row_chunk < rows; row_chunk += kRowChunk) {
      const int64_t chunk_end = std::min(rows, row_chunk + kRowChunk);
      for (int64_t block0 = begin; block0 < end; block0 += kMaxBlocks) {
        const int64_t panel_blocks = std::min<int64_t>(kMaxBlocks, end - block0);
        const c10::BFloat16* w = w_data + block0 * block_stride;
        // The chunk's rows in near-equal micro-kernel calls (32 = 6 + 6 + 5 +
        // 5 + 5 + 5, not 6 x 5 + 2): a call of few rows loads as many weights
        // for less arithmetic.
        const int64_t chunk_rows = chunk_end - row_chunk;
        const int64_t calls = (chunk_rows + kMaxRows - 1) / kMaxRows;
        for (int64_t call = 0, row0 = row_chunk; call < calls; ++call) {
          const int64_t micro_rows = chunk_rows / calls + (call < chunk_rows % calls ? 1 : 0);
          kKernels[micro_rows - 1][panel_blocks - 1](x_data + row0 * x_stride, x_stride, w,
                                                     block_stride, pairs, epilogue, row0,
                                                     block0 * kBlock);
          row0 += micro_rows;
        }
      }
    }
  });
  return out;
}

#else

bool avx512_bf16_available() { return false; }
at::Tensor avx512_bf16_pack(const at::Tensor&) {
  TORCH_CHECK(false, "avx512_bf16_pack: this build has no AVX-512 kernels");
}
at::Tensor avx512_bf16_linear(const at::Tensor&, const at::Tensor&, int64_t, const at::Tensor&,
                              const at::Tensor&) {
  TORCH_CHECK(false, "avx512_bf16_linear: this build has no AVX-512 kernels");
}

#endif

}  // namespace r1kit
