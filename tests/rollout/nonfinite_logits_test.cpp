// Sampling from NaN or infinite logits is an error naming the cause, not a
// completion of token 0 with NaN log-probs: greedy and sampled decoding, on
// the first token (prefill) and on a later one (decode).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "tests/rollout/rollout_test_util.h"

namespace r1kit {
namespace {

using testing::tiny_policy;
using testing::tiny_tokenizer;

// The message of the Error `generate` throws; "" (and a failure) when it throws none.
std::string error_of(RolloutEngine& engine, const std::vector<std::vector<int64_t>>& prompts,
                     const SamplingParams& params) {
  try {
    engine.generate(prompts, params);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "generate returned";
  return "";
}

class NonfiniteLogits : public ::testing::TestWithParam<double> {};  // the temperature

TEST_P(NonfiniteLogits, NaNFinalNormStopsGenerationWithAnError) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  {
    at::NoGradGuard no_grad;
    weights->model->model->norm->weight[5].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  params.temperature = GetParam();
  params.max_new_tokens = 4;
  params.n = 2;
  const std::string message = error_of(engine, {tokenizer->encode("1+2=")}, params);
  EXPECT_NE(message.find("logits are not finite"), std::string::npos) << message;
  EXPECT_NE(message.find("completion token 0 of prompt 0"), std::string::npos) << message;
}

TEST_P(NonfiniteLogits, InfiniteEmbeddingOfALaterTokenStopsAtThatToken) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  params.temperature = GetParam();
  params.max_new_tokens = 6;
  params.stop_at_eos = false;
  const std::vector<std::vector<int64_t>> prompts = {tokenizer->encode("3+4=")};
  const std::vector<Completion> finite = engine.generate(prompts, params);
  ASSERT_GE(finite[0].token_ids.size(), 2u);
  for (float logprob : finite[0].logprobs) EXPECT_TRUE(std::isfinite(logprob));
  const int64_t first = finite[0].token_ids[0];
  ASSERT_EQ(std::count(prompts[0].begin(), prompts[0].end(), first), 0) << "pick another prompt";
  // The first sampled token's embedding breaks the second token's logits only.
  weights->publish([&](Transformer& model) {
    at::NoGradGuard no_grad;
    model->model->embed_tokens->weight[first].fill_(std::numeric_limits<float>::infinity());
  });
  const std::string message = error_of(engine, prompts, params);
  EXPECT_NE(message.find("completion token 1 of prompt 0"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Temperatures, NonfiniteLogits, ::testing::Values(0.0, 1.0));

}  // namespace
}  // namespace r1kit
