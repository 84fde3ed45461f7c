// The decode plan's fused kernels (RMSNorm, rotary embedding, silu * up)
// against the plain ATen expressions of policy/decoder_layer.cpp, in float32
// and bfloat16, at widths that take the AVX-512 path where the CPU has it.
#include "rollout/fused_ops.h"

#include <gtest/gtest.h>

namespace r1kit {
namespace {

double tolerance(at::ScalarType dtype) { return dtype == at::kFloat ? 1e-5 : 3e-2; }

double largest_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

TEST(FusedOps, RmsNormalizeMatchesTheFormula) {
  at::manual_seed(19);
  at::Tensor x = at::randn({5, 384}) * 3;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor input = x.to(dtype);
    at::Tensor x32 = input.to(at::kFloat);
    at::Tensor expected = x32 * at::rsqrt(x32.pow(2).mean(-1, true) + 1e-6);
    EXPECT_LT(largest_difference(rms_normalize(input, 1e-6), expected), tolerance(dtype)) << dtype;
  }
}

TEST(FusedOps, RotateMatchesRotateHalf) {
  at::manual_seed(20);
  const int64_t tokens = 4, heads = 5, width = 64;
  at::Tensor storage = at::randn({tokens, (heads + 2) * width});
  at::Tensor angles = at::rand({tokens, width / 2}) * 6;
  at::Tensor cos = at::cat({angles.cos(), angles.cos()}, -1),
             sin = at::cat({angles.sin(), angles.sin()}, -1);
  at::Tensor signed_sin = at::cat({-angles.sin(), angles.sin()}, -1);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor x =
        storage.to(dtype).narrow(1, 0, heads * width).view({tokens, heads, width});  // strided rows
    at::Tensor x32 = x.to(at::kFloat);
    at::Tensor half_rotated =
        at::cat({-x32.narrow(-1, width / 2, width / 2), x32.narrow(-1, 0, width / 2)}, -1);
    at::Tensor expected = x32 * cos.unsqueeze(1) + half_rotated * sin.unsqueeze(1);
    at::Tensor actual = rotate(x, cos.to(dtype), signed_sin.to(dtype));
    EXPECT_LT(largest_difference(actual, expected), tolerance(dtype) * 4) << dtype;
  }
}

// silu(g) * u reaches ~100 at these inputs, so the bfloat16 output's own
// rounding (2^-9 relative) is the bound: measured relative to 1 + |expected|.
TEST(FusedOps, SiluMulMatchesSwiGlu) {
  at::manual_seed(21);
  at::Tensor gate_up = at::randn({3, 2 * 96}) * 4;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor input = gate_up.to(dtype).to(at::kFloat);
    at::Tensor expected = at::silu(input.narrow(1, 0, 96)) * input.narrow(1, 96, 96);
    at::Tensor actual = silu_mul(gate_up.to(dtype)).to(at::kFloat);
    const double relative = ((actual - expected).abs() / (expected.abs() + 1)).max().item<double>();
    EXPECT_LT(relative, dtype == at::kFloat ? 1e-5 : 4e-3) << dtype;
  }
}

}  // namespace
}  // namespace r1kit
