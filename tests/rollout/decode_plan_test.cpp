// The rollout's decode plan against the policy module: in float32 its logits
// equal Transformer::forward_cached's (biases, tied embeddings, ragged
// prefill, decode); in bfloat16 greedy tokens agree with float32 for the first
// tokens and logprobs stay within a stated bound of the float32 learner's.
// References are computed in-process from the module (no golden files).
#include "rollout/decode_plan.h"

#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "rollout/decode_attention.h"
#include "rollout/engine.h"
#include "tests/rollout/rollout_test_util.h"

namespace r1kit {
namespace {

using testing::kRolloutContext;
using testing::tiny_model_config;
using testing::tiny_policy;
using testing::tiny_tokenizer;

// Prefill of ragged prompts, then three decode steps, through both paths; the
// largest logit difference seen.
double plan_vs_module_difference(Transformer& model) {
  c10::InferenceMode guard;
  DecodePlan plan(*model, at::kFloat);
  const ModelConfig& config = model->config();
  KvCache module_cache(config, 4, 32), plan_cache(config, 4, 32);
  at::Tensor tokens = at::randint(0, config.vocab_size, {3, 5}, at::kLong);
  std::vector<int64_t> rows = {3, 0, 2}, lengths = {5, 2, 4};
  double worst = 0;
  at::Tensor expected = model->forward_cached(tokens, module_cache, at::tensor(rows),
                                              at::tensor(lengths), /*last_only=*/true);
  at::Tensor actual = plan.forward(tokens, plan_cache, rows, lengths);
  worst = std::max(worst, (expected - actual).abs().max().item<double>());
  for (int step = 0; step < 3; ++step) {
    at::Tensor next = expected.argmax(-1).view({-1, 1});
    expected =
        model->forward_cached(next, module_cache, at::tensor(rows), at::ones({3}, at::kLong), true);
    actual = plan.forward(next, plan_cache, rows, {1, 1, 1});
    worst = std::max(worst, (expected - actual).abs().max().item<double>());
  }
  EXPECT_EQ(plan_cache.lengths(), module_cache.lengths());
  return worst;
}

TEST(DecodePlan, Float32LogitsEqualTheModulesCachedForward) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  EXPECT_LT(plan_vs_module_difference(weights->model), 1e-4);
}

TEST(DecodePlan, Float32HandlesBiasesAndTiedEmbeddings) {
  ModelConfig config = tiny_model_config(40, kRolloutContext);
  config.model_type = "qwen2";
  config.attention_bias = true;
  config.mlp_bias = true;
  config.attention_output_bias = true;
  config.tie_word_embeddings = true;
  Transformer model = make_random_transformer(config, 3, 0.3);
  {
    at::NoGradGuard no_grad;
    for (auto& parameter : model->parameters()) {
      if (parameter.dim() == 1) parameter.uniform_(-0.5, 0.5);  // nonzero biases and norm weights
    }
  }
  EXPECT_LT(plan_vs_module_difference(model), 1e-4);
}

TEST(DecodePlan, Float32WithTheDecodeKernelEqualsTheModule) {
  ModelConfig config = tiny_model_config(40, kRolloutContext);
  config.hidden_size = 64;  // head_dim 16: the AVX-512 decode kernel's smallest width
  config.intermediate_size = 96;
  Transformer model = make_random_transformer(config, 5, 0.3);
  EXPECT_LT(plan_vs_module_difference(model), 1e-4);
}

// The kernel against scaled_dot_product_attention with GQA expanded by hand,
// on ragged rows taken out of order.
TEST(DecodeAttention, MatchesScaledDotProductAttention) {
  const int64_t cache_rows = 5, kv_heads = 2, heads = 6, length = 40, width = 64;
  at::Tensor keys = at::randn({cache_rows, kv_heads, length, width});
  if (!decode_attention_supported(keys)) GTEST_SKIP() << "no AVX-512 on this CPU";
  at::Tensor values = at::randn({cache_rows, kv_heads, length, width});
  at::Tensor q =
      at::randn({3, heads + kv_heads, width}).narrow(1, 0, heads);  // strided as in the plan
  std::vector<int64_t> rows = {4, 0, 2}, visible = {40, 1, 17};
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor k = keys.to(dtype), v = values.to(dtype), query = q.to(dtype);
    at::Tensor actual = decode_attention(query, k, v, rows, visible).to(at::kFloat);  // (B, nh * D)
    for (size_t b = 0; b < rows.size(); ++b) {
      at::Tensor row_k =
          k[rows[b]].narrow(1, 0, visible[b]).to(at::kFloat).repeat_interleave(heads / kv_heads, 0);
      at::Tensor row_v =
          v[rows[b]].narrow(1, 0, visible[b]).to(at::kFloat).repeat_interleave(heads / kv_heads, 0);
      at::Tensor expected =
          at::scaled_dot_product_attention(query[b].to(at::kFloat).unsqueeze(1), row_k, row_v)
              .reshape({-1});
      const double tolerance = dtype == at::kFloat ? 1e-5 : 2e-2;  // bf16: the output's rounding
      EXPECT_LT((actual[b] - expected).abs().max().item<double>(), tolerance)
          << "row " << b << " " << dtype;
    }
  }
}

std::vector<std::vector<int64_t>> prompts_of(const Tokenizer& tokenizer) {
  return {tokenizer.encode("12+34="),   tokenizer.encode("a"),   tokenizer.encode("9*9*9=ab"),
          tokenizer.encode("hello 77"), tokenizer.encode("0-0"), tokenizer.encode("<think>5")};
}

// bfloat16 keeps 8 bits of mantissa: logits move by ~1e-2 relative, so greedy
// paths agree until two candidates come within that margin, and logprobs move
// by a few hundredths of a nat. Measured on this model (weights std 0.3, so
// large logits): 70 of 72 greedy tokens agree, logprob differences from the
// float32 learner have mean 0.024 and max 0.21 nats. Tolerances, with margin:
// the first kGreedyPrefix greedy tokens of every prompt agree, every logprob
// is within kLogprobBound and their mean within kMeanLogprobBound.
constexpr size_t kGreedyPrefix = 4;
constexpr double kLogprobBound = 0.4;
constexpr double kMeanLogprobBound = 0.05;

TEST(DecodePlan, Bfloat16GreedyAgreesWithFloat32ForTheFirstTokens) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 12;
  params.stop_at_eos = false;
  auto prompts = prompts_of(*tokenizer);
  auto exact = RolloutEngine(weights, tokenizer.get()).generate(prompts, params);
  auto fast = RolloutEngine(weights, tokenizer.get(), {.compute_dtype = "bfloat16"})
                  .generate(prompts, params);
  size_t agreeing_total = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    size_t agree = 0;
    while (agree < exact[p].token_ids.size() &&
           exact[p].token_ids[agree] == fast[p].token_ids[agree])
      ++agree;
    EXPECT_GE(agree, kGreedyPrefix) << "prompt " << p;
    agreeing_total += agree;
  }
  std::cout << "bf16 greedy: " << agreeing_total << " of " << prompts.size() * 12
            << " leading tokens agree\n";
}

TEST(DecodePlan, Bfloat16LogprobsStayNearTheFloat32Learner) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  SamplingParams params;
  params.temperature = 0.8;
  params.n = 2;
  params.max_new_tokens = 16;
  params.stop_at_eos = false;
  auto prompts = prompts_of(*tokenizer);
  auto completions = RolloutEngine(weights, tokenizer.get(), {.compute_dtype = "bfloat16"})
                         .generate(prompts, params);
  c10::InferenceMode guard;
  double worst = 0, total = 0;
  int64_t count = 0;
  for (const auto& completion : completions) {
    std::vector<int64_t> ids = prompts[completion.prompt_index];
    const int64_t prompt_length = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), completion.token_ids.begin(), completion.token_ids.end());
    at::Tensor tokens = at::tensor(ids, at::kLong).view({1, -1});
    at::Tensor logprobs =
        (weights->model->forward(tokens, at::ones_like(tokens))[0] / params.temperature)
            .log_softmax(-1);
    for (size_t t = 0; t < completion.token_ids.size(); ++t) {
      float expected = logprobs[prompt_length - 1 + t][completion.token_ids[t]].item<float>();
      const double difference = std::abs(static_cast<double>(completion.logprobs[t]) - expected);
      worst = std::max(worst, difference);
      total += difference;
      ++count;
    }
  }
  std::cout << "bf16 logprobs vs float32: largest difference " << worst << " nats, mean "
            << total / count << "\n";
  EXPECT_LE(worst, kLogprobBound);
  EXPECT_LE(total / count, kMeanLogprobBound);
  EXPECT_GT(worst, 0.0);  // the bfloat16 path really ran
}

TEST(DecodePlan, PublishRebuildsThePlan) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 8;
  params.stop_at_eos = false;
  auto prompt = tokenizer->encode("12+34=");
  auto before = engine.generate({prompt}, params)[0];
  weights->publish([](Transformer& model) {
    at::NoGradGuard no_grad;
    model->lm_head->weight.mul_(-1);  // reverses the ranking of every logit
  });
  auto after = engine.generate({prompt}, params)[0];
  RolloutEngine fresh(std::make_shared<PolicyWeights>(weights->model), tokenizer.get());
  EXPECT_EQ(after.token_ids, fresh.generate({prompt}, params)[0].token_ids);
  EXPECT_NE(after.token_ids, before.token_ids);
}

TEST(DecodePlan, UnknownComputeDtypeNamesTheKey) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  try {
    RolloutEngine engine(weights, tokenizer.get(), {.compute_dtype = "float16"});
    ADD_FAILURE() << "expected a usage error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("compute_dtype"), std::string::npos) << e.what();
  }
  auto options =
      read_config<EngineOptions>(nlohmann::json{{"compute_dtype", "bfloat16"}}, "recipe.json");
  EXPECT_EQ(options.compute_dtype, "bfloat16");
  try {
    read_config<EngineOptions>(nlohmann::json{{"compute_dtype", "fp8"}}, "recipe.json");
    ADD_FAILURE() << "expected a config error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("compute_dtype"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit
