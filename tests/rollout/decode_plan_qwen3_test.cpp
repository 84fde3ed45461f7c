// The rollout's decode plan on the Qwen3 fixtures (q_norm and k_norm applied
// per head between the fused qkv matmul and RoPE; head_dim apart from
// hidden / heads; tied and untied heads). In float32 it equals the module's
// cached forward and reproduces transformers' greedy tokens; in bfloat16 its
// logprobs stay within decode_plan_test.cpp's bounds of the float32 module.
// Golden tokens: tests/fixtures/tiny-qwen3*/expected.safetensors from
// tools/make_fixtures.py.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <iostream>

#include "policy/checkpoint.h"
#include "rollout/decode_plan.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_expected_values;
using testing::fixture_path;

constexpr const char* kQwen3Fixtures[] = {"tiny-qwen3", "tiny-qwen3-untied"};

// The plan's logits, in float32, at each step of feeding `prompt` (P) and then
// `continuation` (n) one token at a time: row i (n, V) predicts continuation[i].
at::Tensor teacher_forced_logits(const DecodePlan& plan, const ModelConfig& config,
                                 const at::Tensor& prompt, const at::Tensor& continuation) {
  const int64_t steps = continuation.numel();
  KvCache cache(config, 1, prompt.numel() + steps, at::TensorOptions().dtype(plan.dtype()));
  std::vector<at::Tensor> rows = {plan.forward(prompt.unsqueeze(0), cache, {0}, {prompt.numel()})};
  for (int64_t i = 0; i + 1 < steps; ++i)
    rows.push_back(plan.forward(continuation.narrow(0, i, 1).unsqueeze(0), cache, {0}, {1}));
  return at::cat(rows).to(at::kFloat);
}

TEST(DecodePlanQwen3, Float32RaggedPrefillAndDecodeEqualTheModule) {
  c10::InferenceMode guard;
  for (const char* name : kQwen3Fixtures) {
    Transformer model = load_pretrained(fixture_path(name));
    const ModelConfig& config = model->config();
    DecodePlan plan(*model, at::kFloat);
    const auto expected = fixture_expected_values(name);
    const at::Tensor tokens = expected.at("tokens_right");  // (3, 10), rows of 10, 7 and 4
    const std::vector<int64_t> rows = {3, 0, 2}, lengths = {10, 7, 4};
    KvCache module_cache(config, 4, 16), plan_cache(config, 4, 16);
    at::Tensor reference = model->forward_cached(tokens, module_cache, at::tensor(rows),
                                                 at::tensor(lengths), /*last_only=*/true);
    at::Tensor actual = plan.forward(tokens, plan_cache, rows, lengths);
    double worst = (reference - actual).abs().max().item<double>();
    for (int step = 0; step < 3; ++step) {
      const at::Tensor next = reference.argmax(-1).view({-1, 1});
      reference = model->forward_cached(next, module_cache, at::tensor(rows),
                                        at::ones({3}, at::kLong), true);
      actual = plan.forward(next, plan_cache, rows, {1, 1, 1});
      worst = std::max(worst, (reference - actual).abs().max().item<double>());
    }
    EXPECT_LT(worst, 1e-4) << name;
    EXPECT_EQ(plan_cache.lengths(), module_cache.lengths()) << name;
  }
}

TEST(DecodePlanQwen3, Float32GreedyTokensAreTransformers) {
  c10::InferenceMode guard;
  for (const char* name : kQwen3Fixtures) {
    Transformer model = load_pretrained(fixture_path(name));
    DecodePlan plan(*model, at::kFloat);
    const auto expected = fixture_expected_values(name);
    for (const char* index : {"0", "1"}) {
      const at::Tensor prompt = expected.at(std::string("prompt_") + index);
      const at::Tensor greedy = expected.at(std::string("greedy_") + index);
      const at::Tensor logits = teacher_forced_logits(plan, model->config(), prompt, greedy);
      // Each step's argmax is transformers' token, so free-running greedy decoding is too.
      EXPECT_TRUE(at::equal(logits.argmax(-1), greedy)) << name << " prompt " << index;
    }
  }
}

TEST(DecodePlanQwen3, Bfloat16LogprobsStayNearTheFloat32Module) {
  // decode_plan_test.cpp's bounds: every logprob within 0.4 nats, their mean within
  // 0.05, and the first 4 greedy tokens unchanged.
  c10::InferenceMode guard;
  for (const char* name : kQwen3Fixtures) {
    Transformer model = load_pretrained(fixture_path(name));
    DecodePlan plan(*model, at::kBFloat16);
    const auto expected = fixture_expected_values(name);
    double worst = 0, total = 0;
    int64_t count = 0;
    for (const char* index : {"0", "1"}) {
      const at::Tensor prompt = expected.at(std::string("prompt_") + index);
      const at::Tensor greedy = expected.at(std::string("greedy_") + index);
      const at::Tensor logprobs =
          teacher_forced_logits(plan, model->config(), prompt, greedy).log_softmax(-1);  // (n, V)
      const at::Tensor sequence = at::cat({prompt, greedy}).unsqueeze(0);
      const at::Tensor reference = model->forward(sequence, at::ones_like(sequence))[0]
                                       .narrow(0, prompt.numel() - 1, greedy.numel())
                                       .log_softmax(-1);  // (n, V)
      const at::Tensor difference =
          (logprobs.gather(1, greedy.unsqueeze(1)) - reference.gather(1, greedy.unsqueeze(1)))
              .abs();
      worst = std::max(worst, difference.max().item<double>());
      total += difference.sum().item<double>();
      count += difference.numel();
      EXPECT_TRUE(at::equal(logprobs.argmax(-1).narrow(0, 0, 4), greedy.narrow(0, 0, 4)))
          << name << " prompt " << index;
    }
    std::cout << name << " bf16 logprobs vs float32: largest difference " << worst << " nats, mean "
              << total / count << "\n";
    EXPECT_LE(worst, 0.4) << name;
    EXPECT_LE(total / count, 0.05) << name;
    EXPECT_GT(worst, 0.0) << name;  // the bfloat16 path really ran
  }
}

}  // namespace
}  // namespace r1kit
