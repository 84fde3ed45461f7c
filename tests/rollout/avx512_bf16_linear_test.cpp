// The AVX512-BF16 matmul of the decode plan against at::matmul in float32 of
// the same bfloat16 values, over every row count of a decode step (1..64) and
// prefill-sized ones, column and input counts that are not multiples of the
// blocks (odd K included), with and without bias and residual, on one thread
// and on several.
#include "rollout/avx512_bf16_linear.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>

namespace r1kit {
namespace {

// Largest |actual - expected| / (2^-8 |expected| + 1e-3): one rounding to
// bfloat16 at the end (at most 2^-9 relative) and float32 sums of a few
// hundred products leave it below 1.
double scaled_error(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor bound = expected.abs() * std::ldexp(1.0, -8) + 1e-3;
  return ((actual.to(at::kFloat) - expected).abs() / bound).max().item<double>();
}

void check_shape(int64_t rows, int64_t n, int64_t k) {
  at::Tensor weight = at::randn({n, k}).to(at::kBFloat16);
  at::Tensor packed = avx512_bf16_pack(weight);
  at::Tensor x = at::randn({rows, k}).to(at::kBFloat16);
  at::Tensor bias = at::randn({n}).to(at::kBFloat16);
  at::Tensor residual = at::randn({rows, n}).to(at::kBFloat16);
  const at::Tensor product = at::matmul(x.to(at::kFloat), weight.to(at::kFloat).t());
  for (bool with_bias : {false, true}) {
    for (bool with_residual : {false, true}) {
      at::Tensor expected = product;
      if (with_bias) expected = expected + bias.to(at::kFloat);
      if (with_residual) expected = expected + residual.to(at::kFloat);
      const at::Tensor actual = avx512_bf16_linear(x, packed, n, with_bias ? bias : at::Tensor(),
                                                   with_residual ? residual : at::Tensor());
      ASSERT_EQ(actual.sizes(), (at::IntArrayRef{rows, n}));
      ASSERT_EQ(actual.scalar_type(), at::kBFloat16);
      EXPECT_LT(scaled_error(actual, expected), 1.0)
          << rows << " x " << k << " -> " << n << ", bias " << with_bias << ", residual "
          << with_residual;
    }
  }
}

TEST(Avx512Bf16Linear, MatchesAFloat32MatmulAtEveryDecodeRowCount) {
  if (!avx512_bf16_available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  at::manual_seed(5);
  for (int64_t rows = 1; rows <= 64; ++rows) check_shape(rows, 77, 45);
}

TEST(Avx512Bf16Linear, MatchesAFloat32MatmulOnOddAndWholeShapes) {
  if (!avx512_bf16_available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  at::manual_seed(6);
  // N below, at and across the 16-column blocks and 64-column panels; K odd,
  // even, below one pair.
  for (int64_t n : {1, 15, 16, 17, 63, 64, 65, 130}) {
    for (int64_t k : {1, 2, 31, 96, 129}) {
      for (int64_t rows : {1, 5, 6, 7, 33}) check_shape(rows, n, k);
    }
  }
  check_shape(250, 200, 384);  // more rows than one pass over the panels
}

TEST(Avx512Bf16Linear, ThreadCountDoesNotChangeTheResult) {
  if (!avx512_bf16_available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  at::manual_seed(7);
  at::Tensor weight = at::randn({640, 384}).to(at::kBFloat16);
  at::Tensor packed = avx512_bf16_pack(weight);
  at::Tensor x = at::randn({8, 384}).to(at::kBFloat16);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const at::Tensor one = avx512_bf16_linear(x, packed, 640, {}, {});
  at::set_num_threads(std::max(threads, 2));
  const at::Tensor several = avx512_bf16_linear(x, packed, 640, {}, {});
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(one, several));
}

TEST(Avx512Bf16Linear, RefusesMismatchedShapes) {
  at::Tensor weight = at::zeros({40, 30}, at::kBFloat16);
  EXPECT_THROW(avx512_bf16_pack(at::zeros({40, 30})), c10::Error);  // float32
  if (!avx512_bf16_available()) return;
  at::Tensor packed = avx512_bf16_pack(weight);
  EXPECT_EQ(packed.sizes(), (at::IntArrayRef{3, 15, 16, 2}));
  const at::Tensor x = at::zeros({2, 30}, at::kBFloat16);
  EXPECT_THROW(avx512_bf16_linear(at::zeros({2, 32}, at::kBFloat16), packed, 40, {}, {}),
               c10::Error);                                             // K differs
  EXPECT_THROW(avx512_bf16_linear(x, packed, 50, {}, {}), c10::Error);  // N beyond the blocks
  EXPECT_THROW(avx512_bf16_linear(x, packed, 40, at::zeros({39}, at::kBFloat16), {}),
               c10::Error);  // bias length
  EXPECT_THROW(avx512_bf16_linear(x, packed, 40, {}, at::zeros({2, 40})), c10::Error);  // dtype
}

}  // namespace
}  // namespace r1kit
