// The AMX bfloat16 matmul of the decode plan against a float32 matmul of the
// same bfloat16 values, at decode row counts (1, a partial tile, whole tiles,
// more than one pair of tiles), with and without the residual.
#include "rollout/amx_linear.h"

#include <gtest/gtest.h>

namespace r1kit {
namespace {

TEST(AmxLinear, MatchesAFloat32MatmulOfTheSameValues) {
  if (!amx_available()) GTEST_SKIP() << "no AMX-BF16 on this CPU";
  at::manual_seed(3);
  const int64_t k = 96, n = 64;
  at::Tensor weight = at::randn({n, k}).to(at::kBFloat16);
  ASSERT_TRUE(amx_fits(weight));
  at::Tensor packed = amx_pack(weight);
  for (int64_t rows : {1, 7, 16, 32, 45, 64}) {
    at::Tensor x = at::randn({rows, k}).to(at::kBFloat16);
    at::Tensor residual = at::randn({rows, n}).to(at::kBFloat16);
    at::Tensor product = at::mm(x.to(at::kFloat), weight.to(at::kFloat).t());  // (rows, n)
    for (bool add : {false, true}) {
      at::Tensor expected = add ? product + residual.to(at::kFloat) : product;
      at::Tensor actual = amx_linear(x, packed, add ? residual : at::Tensor());
      ASSERT_EQ(actual.sizes(), (at::IntArrayRef{rows, n}));
      ASSERT_EQ(actual.scalar_type(), at::kBFloat16);
      // One rounding to bfloat16 at the end: 2^-9 relative, plus float32 sums.
      const double relative =
          ((actual.to(at::kFloat) - expected).abs() / (expected.abs() + 1)).max().item<double>();
      EXPECT_LT(relative, 4e-3) << rows << " rows, residual " << add;
    }
  }
}

TEST(AmxLinear, RefusesShapesOutsideTheTiles) {
  EXPECT_FALSE(amx_fits(at::zeros({64, 100}, at::kBFloat16)));  // K not a multiple of 32
  EXPECT_FALSE(amx_fits(at::zeros({48, 96}, at::kBFloat16)));   // N not a multiple of 32
  EXPECT_FALSE(amx_fits(at::zeros({64, 96})));                  // float32
  EXPECT_THROW(amx_pack(at::zeros({64, 100}, at::kBFloat16)), c10::Error);
}

}  // namespace
}  // namespace r1kit
