// The rollout engine against references: greedy equals a full recompute,
// continuous batching does not change a request's result, returned logprobs
// equal a learner-side recomputation, stop strings cut across token boundaries.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "rollout/sampler.h"
#include "rollout/workers.h"
#include "tests/rollout/rollout_test_util.h"

namespace r1kit {
namespace {

using testing::tiny_policy;
using testing::tiny_tokenizer;

// Greedy decoding by re-running the full sequence every step.
std::vector<int64_t> greedy_by_recompute(Transformer& model, std::vector<int64_t> ids,
                                         int64_t steps) {
  c10::InferenceMode guard;
  std::vector<int64_t> generated;
  for (int64_t i = 0; i < steps; ++i) {
    at::Tensor tokens = at::tensor(ids, at::kLong).view({1, -1});
    at::Tensor logits = model->forward(tokens, at::ones_like(tokens));
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    generated.push_back(next);
    ids.push_back(next);
  }
  return generated;
}

std::vector<std::vector<int64_t>> some_prompts(const Tokenizer& tokenizer) {
  return {tokenizer.encode("12+34="), tokenizer.encode("a"), tokenizer.encode("9*9*9=ab"),
          tokenizer.encode("hello 77"), tokenizer.encode("0-0")};
}

TEST(RolloutEngine, GreedyEqualsFullRecompute) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 12;
  params.stop_at_eos = false;
  auto prompts = some_prompts(*tokenizer);
  auto completions = engine.generate(prompts, params);
  ASSERT_EQ(completions.size(), prompts.size());
  for (size_t p = 0; p < prompts.size(); ++p) {
    EXPECT_EQ(completions[p].token_ids, greedy_by_recompute(weights->model, prompts[p], 12))
        << "prompt " << p;
    EXPECT_EQ(completions[p].finish_reason, FinishReason::kLength);
    EXPECT_EQ(completions[p].text, tokenizer->decode(completions[p].token_ids));
  }
}

TEST(RolloutEngine, ContinuousBatchingGivesEachRequestItsAloneResult) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 10;
  params.stop_token_ids = {*tokenizer->token_to_id("=")};  // sequences end at different times
  params.stop_at_eos = false;
  auto prompts = some_prompts(*tokenizer);
  RolloutEngine batched(weights, tokenizer.get(), {.max_batch_size = 2});
  auto together = batched.generate(prompts, params);
  RolloutEngine alone(weights, tokenizer.get());
  for (size_t p = 0; p < prompts.size(); ++p) {
    auto single = alone.generate({prompts[p]}, params);
    EXPECT_EQ(together[p].token_ids, single[0].token_ids) << "prompt " << p;
    EXPECT_EQ(together[p].finish_reason, single[0].finish_reason);
  }
}

TEST(RolloutEngine, SampledLogprobsEqualLearnerRecomputation) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get(), {.max_batch_size = 3});
  SamplingParams params;
  params.temperature = 0.7;
  params.top_p = 0.9;
  params.n = 3;
  params.max_new_tokens = 16;
  params.stop_at_eos = false;
  auto prompts = some_prompts(*tokenizer);
  auto completions = engine.generate(prompts, params);
  ASSERT_EQ(completions.size(), prompts.size() * 3);
  c10::InferenceMode guard;
  for (const auto& completion : completions) {
    std::vector<int64_t> ids = prompts[completion.prompt_index];
    int64_t prompt_length = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), completion.token_ids.begin(), completion.token_ids.end());
    at::Tensor tokens = at::tensor(ids, at::kLong).view({1, -1});
    at::Tensor logprobs =
        (weights->model->forward(tokens, at::ones_like(tokens))[0] / params.temperature)
            .log_softmax(-1);
    for (size_t t = 0; t < completion.token_ids.size(); ++t) {
      float expected = logprobs[prompt_length - 1 + t][completion.token_ids[t]].item<float>();
      EXPECT_NEAR(completion.logprobs[t], expected, 1e-4);
    }
  }
}

TEST(RolloutEngine, GroupSamplesDifferAndAreReproducibleWhateverTheBatching) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  SamplingParams params;
  params.n = 4;
  params.max_new_tokens = 12;
  params.seed = 5;
  params.stop_at_eos = false;
  auto prompts = some_prompts(*tokenizer);
  auto wide =
      RolloutEngine(weights, tokenizer.get(), {.max_batch_size = 64}).generate(prompts, params);
  auto narrow =
      RolloutEngine(weights, tokenizer.get(), {.max_batch_size = 4}).generate(prompts, params);
  std::set<std::vector<int64_t>> distinct;
  for (size_t i = 0; i < wide.size(); ++i) {
    EXPECT_EQ(wide[i].token_ids, narrow[i].token_ids) << i;
    EXPECT_EQ(wide[i].prompt_index, static_cast<int64_t>(i / 4));
    EXPECT_EQ(wide[i].sample_index, static_cast<int64_t>(i % 4));
    if (wide[i].prompt_index == 0) distinct.insert(wide[i].token_ids);
  }
  EXPECT_GT(distinct.size(), 1u);
}

TEST(RolloutEngine, StopStringIsCutAcrossTokenBoundaries) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 20;
  params.stop_at_eos = false;
  auto prompt = tokenizer->encode("12+34=");
  auto free_run = engine.generate({prompt}, params)[0];
  ASSERT_GE(free_run.text.size(), 6u);
  // Three characters = three tokens of the character tokenizer.
  std::string stop = free_run.text.substr(3, 3);
  size_t first = free_run.text.find(stop);
  params.stop_strings = {stop};
  std::vector<std::string> streamed;
  auto stopped = engine.generate({prompt}, params, [&](int64_t, int64_t, const std::string& piece) {
    streamed.push_back(piece);
  })[0];
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped.text, free_run.text.substr(0, first));
  EXPECT_EQ(stopped.token_ids.size(),
            first + 3);  // ids run to the token completing the stop string
  std::string joined;
  for (const auto& piece : streamed) joined += piece;
  EXPECT_EQ(joined, stopped.text);
}

TEST(RolloutEngine, PublishedWeightsCarryANewVersion) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  params.max_new_tokens = 2;
  EXPECT_EQ(engine.generate({tokenizer->encode("1")}, params)[0].weights_version, 0);
  weights->publish([](Transformer& model) {
    at::NoGradGuard no_grad;
    model->model->norm->weight.mul_(1.5);
  });
  EXPECT_EQ(engine.generate({tokenizer->encode("1")}, params)[0].weights_version, 1);
}

TEST(RolloutEngine, BadInputGetsAClearError) {
  auto tokenizer = tiny_tokenizer();
  auto weights = tiny_policy(tokenizer->vocab_size());
  RolloutEngine engine(weights, tokenizer.get());
  SamplingParams params;
  auto expect_usage_error = [&](const std::vector<std::vector<int64_t>>& prompts,
                                const SamplingParams& p, const std::string& fragment) {
    try {
      engine.generate(prompts, p);
      ADD_FAILURE() << "expected an error containing " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUsage);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_usage_error({{}}, params, "prompt 0 is empty");
  expect_usage_error({std::vector<int64_t>(200, 5)}, params, "the context holds 96");
  SamplingParams zero_n = params;
  zero_n.n = 0;
  expect_usage_error({{5}}, zero_n, "n (samples per prompt) must be >= 1");
  SamplingParams negative = params;
  negative.temperature = -1;
  expect_usage_error({{5}}, negative, "temperature must be >= 0");
  SamplingParams unknown_stop = params;
  unknown_stop.stop_token_ids = {100000};
  expect_usage_error({{5}}, unknown_stop, "stop token id 100000 is outside the vocabulary");
}

}  // namespace
}  // namespace r1kit

namespace r1kit {
namespace {

// `samples` samples of 8 tokens for each of `texts`, on the tiny policy.
struct WorkersSetup {
  WorkersSetup(std::vector<const char*> texts, int64_t seed, int64_t samples)
      : tokenizer(testing::tiny_tokenizer()),
        weights(testing::tiny_policy(tokenizer->vocab_size())) {
    params.n = samples;
    params.max_new_tokens = 8;
    params.seed = seed;
    for (const char* text : texts) prompts.push_back(tokenizer->encode(text));
  }
  std::shared_ptr<Tokenizer> tokenizer;
  std::shared_ptr<PolicyWeights> weights;
  SamplingParams params;
  std::vector<std::vector<int64_t>> prompts;
};

TEST(RolloutWorkers, SplitAcrossWorkersEqualsOneEngine) {
  // 48 sequences: three parts of 16, one per worker.
  WorkersSetup setup({"1+1=", "22", "abc", "9-3=", "77*", "h"}, 9, 8);
  auto& [tokenizer, weights, params, prompts] = setup;
  auto single = RolloutEngine(weights, tokenizer.get()).generate(prompts, params);
  RolloutWorkers workers(weights, tokenizer, 3);
  auto split = workers.generate(prompts, params);
  ASSERT_EQ(split.size(), single.size());
  for (size_t i = 0; i < split.size(); ++i) {
    EXPECT_EQ(split[i].prompt_index, single[i].prompt_index);
    EXPECT_EQ(split[i].token_ids, single[i].token_ids) << i;
  }
  auto queued = workers.submit({prompts[0]}, params).get();
  EXPECT_EQ(queued[0].token_ids, single[0].token_ids);
}

// num_workers = 0 on CPU: one engine per core (capped), each limited to its
// share of the threads while it generates; the samples equal one engine's
// for a request split across engines (32 sequences) and for one too small to
// split (one prompt), and a limited engine leaves its caller's thread count
// as it found it.
TEST(RolloutWorkers, AutomaticCountIsOnePerCoreAndEqualsOneEngine) {
  WorkersSetup setup({"1+1=", "22", "abc", "9-3="}, 4, 8);
  auto& [tokenizer, weights, params, prompts] = setup;
  auto single = RolloutEngine(weights, tokenizer.get()).generate(prompts, params);
  RolloutWorkers workers(weights, tokenizer, 0);
  EXPECT_EQ(workers.size(), std::clamp<size_t>(static_cast<size_t>(at::get_num_threads()), 1,
                                               RolloutWorkers::kMaxAutoWorkers));
  auto split = workers.generate(prompts, params);
  ASSERT_EQ(split.size(), single.size());
  for (size_t i = 0; i < split.size(); ++i) EXPECT_EQ(split[i].token_ids, single[i].token_ids) << i;
  auto small = workers.generate({prompts[1]}, params, 1);
  for (int64_t i = 0; i < params.n; ++i)
    EXPECT_EQ(small[i].token_ids, single[params.n + i].token_ids) << i;

  const int threads_before = at::get_num_threads();
  auto limited =
      RolloutEngine(weights, tokenizer.get(), {.num_threads = 1}).generate(prompts, params);
  EXPECT_EQ(at::get_num_threads(), threads_before);
  for (size_t i = 0; i < limited.size(); ++i)
    EXPECT_EQ(limited[i].token_ids, single[i].token_ids) << i;
}

}  // namespace
}  // namespace r1kit
