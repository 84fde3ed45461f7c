// The masked causal-LM loss: equal to a direct re-computation, and in SFT
// only response tokens count (prompt tokens are masked out of the loss).
#include "learner/lm_loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "data/sft_data.h"
#include "tests/data/data_test_util.h"

namespace r1kit {
namespace {

TEST(LmLoss, MatchesADirectRecomputation) {
  at::manual_seed(0);
  at::Tensor logits = at::randn({2, 5, 7});                  // (B, T, V)
  at::Tensor tokens = at::randint(0, 7, {2, 5}, at::kLong);  // (B, T)
  at::Tensor mask = at::tensor({1, 0, 1, 1, 0, 0, 1, 1, 0, 1}, at::kLong).view({2, 5});
  LmLoss loss = causal_lm_loss(logits, tokens, mask);

  double sum = 0.0;
  int64_t count = 0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t + 1 < 5; ++t) {
      if (mask[b][t + 1].item<int64_t>() == 0) continue;
      double denominator = 0.0;
      for (int64_t v = 0; v < 7; ++v) denominator += std::exp(logits[b][t][v].item<double>());
      sum += std::log(denominator) - logits[b][t][tokens[b][t + 1].item<int64_t>()].item<double>();
      ++count;
    }
  }
  EXPECT_EQ(loss.tokens, count);
  EXPECT_EQ(count, 5);  // mask[:, 0] never counts
  EXPECT_NEAR(loss.sum.item<double>(), sum, 1e-5);
  EXPECT_NEAR(loss.loss.item<double>(), sum / count, 1e-6);
}

TEST(LmLoss, EmptyMaskGivesZeroAndBfloat16IsComputedInFloat) {
  at::Tensor logits = at::randn({1, 3, 4});
  LmLoss none = causal_lm_loss(logits, at::zeros({1, 3}, at::kLong), at::zeros({1, 3}, at::kLong));
  EXPECT_EQ(none.tokens, 0);
  EXPECT_EQ(none.loss.item<double>(), 0.0);
  at::Tensor targets = at::tensor({1, 2, 3}, at::kLong).view({1, 3});
  LmLoss half = lm_loss(logits.to(at::kBFloat16), targets, at::ones({1, 3}, at::kBool));
  LmLoss full =
      lm_loss(logits.to(at::kBFloat16).to(at::kFloat), targets, at::ones({1, 3}, at::kBool));
  EXPECT_EQ(half.loss.scalar_type(), at::kFloat);
  EXPECT_NEAR(half.loss.item<double>(), full.loss.item<double>(), 1e-6);
}

TEST(LmLoss, SftMasksPromptTokens) {
  const Tokenizer& tokenizer = *testing::bpe512();
  SftExample example = render_sft_example(
      {{"prompt", "Question: what is 12 + 30?"}, {"response", " 42"}}, tokenizer);
  SftBatch batch = collate_sft({example}, {0}, /*pad_id=*/0);
  const int64_t length = batch.tokens.size(1);
  at::manual_seed(1);
  at::Tensor logits = at::randn({1, length, tokenizer.vocab_size()});  // (1, L, V)
  double base = causal_lm_loss(logits, batch.tokens, batch.loss_mask).loss.item<double>();

  int64_t first_response = 0;
  while (example.loss_mask[first_response] == 0) ++first_response;
  ASSERT_GT(first_response, 2);
  // Another prompt under the same logits: the loss does not move.
  at::Tensor other_prompt = batch.tokens.clone();
  other_prompt.narrow(1, 0, first_response).fill_(7);
  EXPECT_EQ(causal_lm_loss(logits, other_prompt, batch.loss_mask).loss.item<double>(), base);
  // Another response token: it does.
  at::Tensor other_response = batch.tokens.clone();
  other_response[0][first_response] =
      (other_response[0][first_response].item<int64_t>() + 1) % tokenizer.vocab_size();
  EXPECT_NE(causal_lm_loss(logits, other_response, batch.loss_mask).loss.item<double>(), base);
  // Gradients reach only the positions that predict response tokens.
  at::Tensor leaf = logits.clone().requires_grad_(true);
  causal_lm_loss(leaf, batch.tokens, batch.loss_mask).loss.backward();
  at::Tensor touched = leaf.grad().abs().sum(-1).squeeze(0).ne(0);  // (L)
  for (int64_t t = 0; t < length; ++t) {
    bool predicts_response = t + 1 < length && example.loss_mask[t + 1] == 1;
    EXPECT_EQ(touched[t].item<bool>(), predicts_response) << "position " << t;
  }
}

}  // namespace
}  // namespace r1kit
