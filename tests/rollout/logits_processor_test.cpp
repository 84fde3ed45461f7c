// The logits processors: each built-in against a direct re-computation, the
// default chain bit for bit against the sampler's expressions written out, a
// recipe's order, the registry's errors, a processor registered here by one
// line, repetition_penalty's transformers semantics on hand-checked values, and
// the engine handing each row its own token history.
#include "rollout/logits_processor.h"

#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "rollout/sampler.h"
#include "tests/rollout/rollout_test_util.h"

namespace r1kit {
namespace {

constexpr double kMinusInfinity = -std::numeric_limits<double>::infinity();

// Sets logit 0 of every row to -inf: registered by the one line below.
class BanTokenZero : public LogitsProcessor {
 public:
  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    at::Tensor banned = logits.clone();
    banned.select(-1, 0).fill_(kMinusInfinity);
    return banned;
  }
};

R1KIT_REGISTER(logits_processor_registry(), "test_ban_token_zero",
               [](const SamplingParams&) { return std::make_shared<BanTokenZero>(); });

std::shared_ptr<const LogitsProcessor> built(const std::string& name,
                                             const SamplingParams& params) {
  return logits_processor_registry().get(name)(params);
}

at::Tensor finite(const at::Tensor& logits) { return at::isfinite(logits); }

// The sampler's steps as plain expressions: logits / T, the top_k, top_p and
// min_p filters, the inverse-CDF draw, the logprob of the scaled logits. The
// default chain must give these tokens and logprobs bit for bit.
SampledTokens written_out_sample(const at::Tensor& logits, const SamplingParams& params,
                                 const at::Tensor& uniforms) {
  at::Tensor logits32 = logits.to(at::kFloat);
  at::Tensor scaled = logits32 / params.temperature;
  const int64_t vocab = scaled.size(-1);
  at::Tensor filtered = scaled;
  if (params.top_k > 0 && params.top_k < vocab) {
    at::Tensor kth = std::get<0>(filtered.topk(params.top_k, -1)).narrow(-1, params.top_k - 1, 1);
    filtered = filtered.masked_fill(filtered < kth, kMinusInfinity);
  }
  if (params.top_p < 1.0) {
    auto [sorted, order] = filtered.sort(-1, /*descending=*/true);
    at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove_sorted = (cumulative - sorted.softmax(-1)) >= params.top_p;
    at::Tensor remove = at::zeros_like(remove_sorted).scatter(-1, order, remove_sorted);
    filtered = filtered.masked_fill(remove, kMinusInfinity);
  }
  if (params.min_p > 0.0) {
    at::Tensor probs = filtered.softmax(-1);
    at::Tensor threshold = probs.amax(-1, /*keepdim=*/true) * params.min_p;
    filtered = filtered.masked_fill(probs < threshold, kMinusInfinity);
  }
  at::Tensor cumulative = filtered.softmax(-1).to(at::kDouble).cumsum(-1);
  at::Tensor total = cumulative.narrow(-1, cumulative.size(-1) - 1, 1);
  at::Tensor targets = uniforms.to(at::kDouble).view({-1, 1}) * total;
  at::Tensor tokens = at::searchsorted(cumulative, targets, false, true)
                          .squeeze(-1)
                          .clamp_max(cumulative.size(-1) - 1);
  at::Tensor logprobs = scaled.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

TEST(LogitsProcessor, DefaultChainMatchesTheWrittenOutSamplerBitForBit) {
  at::manual_seed(17);
  struct Knobs {
    double temperature;
    int64_t top_k;
    double top_p;
    double min_p;
  };
  const std::vector<Knobs> cases = {{1.0, 0, 1.0, 0.0},   {0.7, 5, 1.0, 0.0},
                                    {1.3, 0, 0.9, 0.0},   {0.8, 0, 1.0, 0.05},
                                    {0.6, 20, 0.8, 0.02}, {1.0, 400, 0.95, 0.1}};
  for (const auto& knobs : cases) {
    SamplingParams params;
    params.temperature = knobs.temperature;
    params.top_k = knobs.top_k;
    params.top_p = knobs.top_p;
    params.min_p = knobs.min_p;
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor logits = (at::randn({32, 300}) * 3).to(dtype);
      at::Tensor uniforms = at::rand({32}, at::kDouble);
      SampledTokens expected = written_out_sample(logits, params, uniforms);
      SampledTokens sampled = Sampler(params).sample(logits, uniforms);
      EXPECT_TRUE(at::equal(sampled.tokens, expected.tokens)) << knobs.temperature << " " << dtype;
      EXPECT_TRUE(at::equal(sampled.logprobs, expected.logprobs))
          << knobs.temperature << " " << dtype;
    }
  }
}

TEST(LogitsProcessor, DefaultChainBuildsOnlyTheKnobsThatAreSet) {
  SamplingParams params;
  EXPECT_EQ(LogitsProcessorChain(params).names(), std::vector<std::string>{"temperature"});
  params.top_p = 0.9;
  params.min_p = 0.1;
  params.repetition_penalty = 1.2;
  EXPECT_EQ(LogitsProcessorChain(params).names(),
            (std::vector<std::string>{"repetition_penalty", "temperature", "top_p", "min_p"}));
  params.temperature = 0;  // greedy: the truncation filters never move the argmax
  EXPECT_EQ(LogitsProcessorChain(params).names(), std::vector<std::string>{"repetition_penalty"});
}

TEST(LogitsProcessor, TemperatureDividesTheLogits) {
  at::manual_seed(1);
  at::Tensor logits = at::randn({4, 40});
  SamplingParams params;
  params.temperature = 0.7;
  EXPECT_TRUE(at::equal(built("temperature", params)->apply(logits, {}), logits / 0.7));
  params.temperature = 0;
  EXPECT_EQ(built("temperature", params), nullptr);
}

TEST(LogitsProcessor, TopKKeepsTheKLargestOfEachRow) {
  at::manual_seed(2);
  at::Tensor logits = at::randn({6, 50});
  SamplingParams params;
  params.top_k = 5;
  at::Tensor processed = built("top_k", params)->apply(logits, {});
  for (int64_t row = 0; row < 6; ++row) {
    std::vector<float> values(logits[row].data_ptr<float>(), logits[row].data_ptr<float>() + 50);
    std::vector<float> sorted = values;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    for (int64_t v = 0; v < 50; ++v) {
      const float kept = processed[row][v].item<float>();
      if (values[v] >= sorted[4]) {
        EXPECT_EQ(kept, values[v]);
      } else {
        EXPECT_EQ(kept, -INFINITY);
      }
    }
  }
  params.top_k = 0;
  EXPECT_EQ(built("top_k", params), nullptr);
}

TEST(LogitsProcessor, TopPKeepsTheTokensWhosePredecessorsHaveNotReachedP) {
  at::manual_seed(3);
  at::Tensor logits = at::randn({8, 30}) * 2;
  SamplingParams params;
  params.top_p = 0.7;
  at::Tensor processed = built("top_p", params)->apply(logits, {});
  at::Tensor probs = logits.to(at::kDouble).softmax(-1);
  for (int64_t row = 0; row < 8; ++row) {
    std::vector<std::pair<double, int64_t>> ranked;
    for (int64_t v = 0; v < 30; ++v) ranked.emplace_back(probs[row][v].item<double>(), v);
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
    double before = 0;
    for (const auto& [p, v] : ranked) {
      ASSERT_GT(std::abs(before - 0.7), 1e-5) << "a row too close to the boundary";
      EXPECT_EQ(std::isfinite(processed[row][v].item<float>()), before < 0.7) << row << " " << v;
      before += p;
    }
  }
}

TEST(LogitsProcessor, MinPDropsTokensBelowAFractionOfTheMostLikely) {
  at::manual_seed(4);
  at::Tensor logits = at::randn({8, 30}) * 2;
  SamplingParams params;
  params.min_p = 0.2;
  at::Tensor processed = built("min_p", params)->apply(logits, {});
  at::Tensor probs = logits.to(at::kDouble).softmax(-1);
  at::Tensor expected = probs >= probs.amax(-1, true) * 0.2;
  EXPECT_TRUE(at::equal(finite(processed), expected));
  EXPECT_TRUE(at::equal(processed.masked_select(expected), logits.masked_select(expected)));
}

TEST(LogitsProcessor, BannedTokenIdsAreMinusInfinityAndTheRestUnchanged) {
  at::manual_seed(5);
  at::Tensor logits = at::randn({3, 12});
  SamplingParams params;
  params.banned_token_ids = {2, 7};
  at::Tensor processed = built("banned_token_ids", params)->apply(logits, {});
  at::Tensor expected = logits.clone();
  expected.select(-1, 2).fill_(kMinusInfinity);
  expected.select(-1, 7).fill_(kMinusInfinity);
  EXPECT_TRUE(at::equal(processed, expected));
}

TEST(LogitsProcessor, MaskPaddedVocabRemovesIdsPastTheTokenizer) {
  at::Tensor logits = at::randn({2, 10});
  SamplingParams params;
  params.mask_padded_vocab = true;
  LogitsContext context;
  context.tokenizer_vocab_size = 7;
  at::Tensor processed = built("mask_padded_vocab", params)->apply(logits, context);
  EXPECT_TRUE(at::equal(processed.narrow(-1, 0, 7), logits.narrow(-1, 0, 7)));
  EXPECT_FALSE(at::isfinite(processed.narrow(-1, 7, 3)).any().item<bool>());
  context.tokenizer_vocab_size = 10;
  EXPECT_TRUE(at::equal(built("mask_padded_vocab", params)->apply(logits, context), logits));
}

// transformers' RepetitionPenaltyLogitsProcessor: a seen token's logit is
// divided by the penalty when positive, multiplied when negative; prompt ids
// count, a token seen twice is penalised once. Values worked by hand.
TEST(LogitsProcessor, RepetitionPenaltyFollowsTransformers) {
  at::Tensor logits = at::tensor({2.0f, -1.0f, 0.5f, 3.0f, -4.0f, 1.0f}).view({2, 3});
  SamplingParams params;
  params.repetition_penalty = 2.0;
  const std::vector<int64_t> prompt0 = {0}, generated0 = {1, 1}, prompt1 = {2}, generated1 = {};
  LogitsContext context;
  context.prompt_ids = {prompt0, prompt1};
  context.generated_ids = {generated0, generated1};
  at::Tensor processed = built("repetition_penalty", params)->apply(logits, context);
  // row 0: 2 / 2 = 1, -1 * 2 = -2, 0.5 unseen; row 1: 3, -4 unseen, 1 / 2 = 0.5
  EXPECT_TRUE(
      at::equal(processed, at::tensor({1.0f, -2.0f, 0.5f, 3.0f, -4.0f, 0.5f}).view({2, 3})));
  // A penalty below 1 rewards repetition the same way.
  params.repetition_penalty = 0.5;
  processed = built("repetition_penalty", params)->apply(logits, context);
  EXPECT_TRUE(
      at::equal(processed, at::tensor({4.0f, -0.5f, 0.5f, 3.0f, -4.0f, 2.0f}).view({2, 3})));
  params.repetition_penalty = 1.0;
  EXPECT_EQ(built("repetition_penalty", params), nullptr);
}

TEST(LogitsProcessor, GreedyWithAPenaltyMovesTheArgmaxNotTheLogprob) {
  at::Tensor logits = at::tensor({3.0f, 2.0f, 0.0f}).view({1, 3});
  SamplingParams params;
  params.temperature = 0;
  params.repetition_penalty = 4.0;  // 3 / 4 < 2: token 1 wins
  const std::vector<int64_t> prompt = {0}, generated = {};
  LogitsContext context;
  context.prompt_ids = {prompt};
  context.generated_ids = {generated};
  SampledTokens sampled = sample_tokens(logits, params, at::zeros({1}, at::kDouble), context);
  EXPECT_EQ(sampled.tokens[0].item<int64_t>(), 1);
  EXPECT_NEAR(sampled.logprobs[0].item<float>(), logits.log_softmax(-1)[0][1].item<float>(), 1e-6);
}

TEST(LogitsProcessor, RecipeOrderIsHonoured) {
  // min_p before temperature judges the unscaled distribution: 0.5, 0.3, 0.2
  // at min_p 0.5 drops 0.2; after T = 2 the distribution is flatter and all stay.
  at::Tensor logits = at::tensor({std::log(0.5f), std::log(0.3f), std::log(0.2f)}).view({1, 3});
  SamplingParams params;
  params.temperature = 2.0;
  params.min_p = 0.5;
  LogitsProcessorChain default_order(params);
  EXPECT_EQ(default_order.names(), (std::vector<std::string>{"temperature", "min_p"}));
  EXPECT_TRUE(finite(default_order.apply(logits, {})).all().item<bool>());
  params.logits_processors = {"min_p", "temperature"};
  EXPECT_EQ(logits_processor_order_problem(params), "");
  LogitsProcessorChain recipe_order(params);
  EXPECT_EQ(recipe_order.names(), (std::vector<std::string>{"min_p", "temperature"}));
  at::Tensor processed = recipe_order.apply(logits, {});
  EXPECT_TRUE(
      at::equal(finite(processed), at::tensor({1, 1, 0}, at::kLong).view({1, 3}).to(at::kBool)));
  EXPECT_TRUE(at::equal(processed, built("min_p", params)->apply(logits, {}) / 2.0));
  // Whatever the order, the logprob is that of logits / T at the chosen token.
  SampledTokens sampled = sample_tokens(logits, params, at::tensor({0.9}, at::kDouble));
  const int64_t token = sampled.tokens[0].item<int64_t>();
  EXPECT_LT(token, 2);
  EXPECT_EQ(sampled.logprobs[0].item<float>(),
            (logits / 2.0).log_softmax(-1)[0][token].item<float>());
}

TEST(LogitsProcessor, ProcessorRegisteredByOneLineIsUsableByName) {
  SamplingParams params;
  params.logits_processors = {"temperature", "test_ban_token_zero"};
  EXPECT_EQ(logits_processor_order_problem(params), "");
  at::Tensor logits = at::tensor({9.0f, 0.0f, -1.0f}).view({1, 3}).expand({200, 3}).contiguous();
  SampledTokens sampled =
      Sampler(params).sample(logits, at::linspace(0.0, 0.999, 200, at::kDouble));
  EXPECT_FALSE((sampled.tokens == 0).any().item<bool>());
  // The logprob still describes logits / T, where token 0 dominates.
  EXPECT_TRUE(
      at::allclose(sampled.logprobs,
                   logits.log_softmax(-1).gather(-1, sampled.tokens.unsqueeze(-1)).squeeze(-1)));
}

TEST(LogitsProcessor, UnknownNameGivesTheRegistryMessage) {
  SamplingParams params;
  params.logits_processors = {"temperature", "top_pp"};
  const std::string problem = logits_processor_order_problem(params);
  EXPECT_EQ(
      problem.rfind("unknown logits processor \"top_pp\" (did you mean \"top_p\"?); known: ", 0),
      0u)
      << problem;
  EXPECT_NE(problem.find("repetition_penalty"), std::string::npos) << problem;
  try {
    LogitsProcessorChain chain(params);
    FAIL() << "an unknown processor was built";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find(problem), std::string::npos) << e.what();
  }
  try {
    read_config<SamplingParams>({{"logits_processors", {"temperature", "top_pp"}}}, "recipe.json");
    FAIL() << "an unknown processor was read";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "recipe.json: logits_processors: " + problem);
  }
  try {
    params.validate(100);
    FAIL() << "an unknown processor was validated";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_EQ(std::string(e.what()), "sampling: logits_processors: " + problem);
  }
}

TEST(LogitsProcessor, OrderWithoutTemperatureTwiceTheSameOrMissingASetKnobIsRefused) {
  SamplingParams params;
  params.logits_processors = {"top_p"};
  EXPECT_NE(logits_processor_order_problem(params).find("must list \"temperature\""),
            std::string::npos);
  params.logits_processors = {"temperature", "top_p", "temperature"};
  EXPECT_EQ(logits_processor_order_problem(params), "\"temperature\" is listed twice");
  params.logits_processors = {"temperature", "top_p"};
  params.top_k = 4;
  EXPECT_EQ(logits_processor_order_problem(params), "top_k is set but the list leaves it out");
  params.top_k = 0;
  EXPECT_EQ(logits_processor_order_problem(params), "");
}

TEST(LogitsProcessor, SamplingParamsValidatesTheNewKnobs) {
  SamplingParams params;
  params.banned_token_ids = {100};
  EXPECT_THROW(params.validate(100), Error);
  params.banned_token_ids = {99};
  EXPECT_NO_THROW(params.validate(100));
  params.repetition_penalty = 0;
  EXPECT_THROW(params.validate(100), Error);
  EXPECT_THROW(read_config<SamplingParams>({{"repetition_penalty", 0.0}}, "recipe.json"), Error);
}

// Greedy decoding with a repetition penalty, re-running the full sequence each
// step and penalising its prompt and generated ids by hand.
std::vector<int64_t> penalised_greedy_by_recompute(Transformer& model, std::vector<int64_t> ids,
                                                   int64_t steps, double penalty) {
  c10::InferenceMode guard;
  std::vector<int64_t> generated;
  for (int64_t i = 0; i < steps; ++i) {
    at::Tensor tokens = at::tensor(ids, at::kLong).view({1, -1});
    at::Tensor logits = model->forward(tokens, at::ones_like(tokens))[0][-1].clone();  // (V)
    std::vector<int64_t> seen = ids;
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t id : seen) {
      const float value = logits[id].item<float>();
      logits[id] = value < 0 ? value * penalty : value / penalty;
    }
    const int64_t next = logits.argmax().item<int64_t>();
    generated.push_back(next);
    ids.push_back(next);
  }
  return generated;
}

TEST(LogitsProcessor, EngineGivesEachRowItsOwnHistory) {
  auto tokenizer = testing::tiny_tokenizer();
  auto weights = testing::tiny_policy(tokenizer->vocab_size());
  SamplingParams params;
  params.temperature = 0;
  params.repetition_penalty = 1.8;
  params.max_new_tokens = 12;
  params.stop_at_eos = false;
  const std::vector<std::vector<int64_t>> prompts = {
      tokenizer->encode("12+34="), tokenizer->encode("a"), tokenizer->encode("9*9*9=ab"),
      tokenizer->encode("hello 77")};
  // Two rows at a time: prompts take over the rows of finished ones.
  auto completions =
      RolloutEngine(weights, tokenizer.get(), {.max_batch_size = 2}).generate(prompts, params);
  SamplingParams plain = params;
  plain.repetition_penalty = 1.0;
  auto unpenalised = RolloutEngine(weights, tokenizer.get()).generate(prompts, plain);
  bool changed = false;
  for (size_t p = 0; p < prompts.size(); ++p) {
    EXPECT_EQ(completions[p].token_ids,
              penalised_greedy_by_recompute(weights->model, prompts[p], 12, 1.8))
        << "prompt " << p;
    changed = changed || completions[p].token_ids != unpenalised[p].token_ids;
  }
  EXPECT_TRUE(changed) << "the penalty changed no completion: the test cannot fail";
}

TEST(LogitsProcessor, EngineNeverSamplesBannedOrPaddedIds) {
  auto tokenizer = testing::tiny_tokenizer();
  const int64_t known = tokenizer->vocab_size();
  auto weights = testing::tiny_policy(known + 6);  // a vocabulary padded past the tokenizer's
  SamplingParams params;
  params.temperature = 3.0;  // nearly uniform: every id would come up
  params.n = 8;
  params.max_new_tokens = 20;
  params.stop_at_eos = false;
  params.mask_padded_vocab = true;
  params.banned_token_ids = {*tokenizer->token_to_id("1"), *tokenizer->token_to_id("a")};
  auto completions =
      RolloutEngine(weights, tokenizer.get()).generate({tokenizer->encode("12+")}, params);
  for (const auto& completion : completions) {
    for (int64_t id : completion.token_ids) {
      EXPECT_LT(id, known);
      EXPECT_NE(id, params.banned_token_ids[0]);
      EXPECT_NE(id, params.banned_token_ids[1]);
    }
  }
  params.mask_padded_vocab = false;
  params.banned_token_ids = {};
  SamplingParams unmasked = params;
  auto free_run = RolloutEngine(weights, nullptr).generate({tokenizer->encode("12+")}, unmasked);
  bool padded = false;
  for (const auto& completion : free_run)
    for (int64_t id : completion.token_ids) padded = padded || id >= known;
  EXPECT_TRUE(padded) << "no padded id drawn without the mask: the test cannot fail";
}

}  // namespace
}  // namespace r1kit
