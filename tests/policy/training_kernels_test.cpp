// The learner's fused RMSNorm, rotary and SwiGLU kernels (policy/training_kernels.h)
// against the plain expressions the model uses everywhere else: the same
// values and the same gradients for the input and the norm weight.
#include "policy/training_kernels.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "policy/decoder_layer.h"

namespace r1kit {
namespace {

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(TrainingKernels, RmsNormMatchesThePlainExpressionAndItsGradients) {
  RmsNorm plain(64, 1e-6);
  {
    at::NoGradGuard no_grad;
    plain->weight.copy_(1.0 + 0.1 * at::randn({64}));
  }
  const at::Tensor x = (3.0 * at::randn({37, 64})).requires_grad_();
  const at::Tensor weight = plain->weight.detach().clone().requires_grad_();
  const at::Tensor upstream = at::randn({37, 64});

  const at::Tensor expected = plain(x);
  const auto expected_grads =
      torch::autograd::grad({(expected * upstream).sum()}, {x, plain->weight});
  const at::Tensor fused = rms_norm_trainable(x, weight, 1e-6);
  const auto fused_grads = torch::autograd::grad({(fused * upstream).sum()}, {x, weight});

  EXPECT_LT(max_difference(fused, expected), 2e-6);
  EXPECT_LT(max_difference(fused_grads[0], expected_grads[0]), 2e-5);
  EXPECT_LT(max_difference(fused_grads[1], expected_grads[1]),
            2e-4 * expected_grads[1].abs().max().item<double>());
}

TEST(TrainingKernels, RotaryMatchesApplyRotaryAndItsGradient) {
  const int64_t tokens = 23, heads = 3, width = 32;
  const at::Tensor angles = at::randn({tokens, width / 2}) * 3.0;
  const at::Tensor cos = at::cat({angles, angles}, -1).cos(),
                   sin = at::cat({angles, angles}, -1).sin();
  const at::Tensor x = at::randn({tokens, heads, width}).requires_grad_();
  const at::Tensor upstream = at::randn({tokens, heads, width});

  // apply_rotary's layout is (B, heads, T, D) with cos (B, T, D).
  const at::Tensor expected =
      apply_rotary(x.transpose(0, 1).unsqueeze(0), cos.unsqueeze(0), sin.unsqueeze(0))
          .squeeze(0)
          .transpose(0, 1);
  const at::Tensor expected_grad = torch::autograd::grad({(expected * upstream).sum()}, {x})[0];
  const at::Tensor fused = rotary_trainable(x, cos, sin);
  const at::Tensor fused_grad = torch::autograd::grad({(fused * upstream).sum()}, {x})[0];

  EXPECT_LT(max_difference(fused, expected), 1e-5);
  EXPECT_LT(max_difference(fused_grad, expected_grad), 1e-5);
}

TEST(TrainingKernels, SwigluMatchesSiluTimesUpAndItsGradients) {
  const at::Tensor gate = (4.0 * at::randn({19, 48})).requires_grad_();
  const at::Tensor up = at::randn({19, 48}).requires_grad_();
  const at::Tensor upstream = at::randn({19, 48});
  const at::Tensor expected = at::silu(gate) * up;
  const auto expected_grads = torch::autograd::grad({(expected * upstream).sum()}, {gate, up});
  const at::Tensor fused = swiglu_trainable(gate, up);
  const auto fused_grads = torch::autograd::grad({(fused * upstream).sum()}, {gate, up});
  EXPECT_LT(max_difference(fused, expected), 1e-5);
  EXPECT_LT(max_difference(fused_grads[0], expected_grads[0]), 1e-5);
  EXPECT_LT(max_difference(fused_grads[1], expected_grads[1]), 1e-5);

  // The halves of one gate_up matmul output: strided rows, read in place.
  const at::Tensor gate_up = at::cat({gate, up}, 1).detach().requires_grad_();
  const std::vector<at::Tensor> halves = gate_up.split(48, 1);
  const at::Tensor strided = swiglu_trainable(halves[0], halves[1]);
  const at::Tensor strided_grad = torch::autograd::grad({(strided * upstream).sum()}, {gate_up})[0];
  EXPECT_LT(max_difference(strided, expected), 1e-5);
  EXPECT_LT(max_difference(strided_grad, at::cat({expected_grads[0], expected_grads[1]}, 1)), 1e-5);
}

}  // namespace
}  // namespace r1kit
