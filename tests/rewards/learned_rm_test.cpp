// `learned_rm`: the score equals a direct forward through the loaded backbone
// and head, whatever the padding of the batch; truncation, normalisation,
// thread safety and the errors for a folder that is not a reward model. The
// model is a tiny random one written to a temporary folder (no fixture).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/thread_pool.h"
#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "rewards/reward.h"
#include "rewards/reward_set.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789 +-*/=?.";

// A random reward model (backbone + score head) and its char tokenizer written
// into `folder`; without the head it is a plain policy folder.
void write_reward_model(const fs::path& folder, bool with_head = true) {
  CharTokenizer tokenizer(kAlphabet);
  tokenizer.save_folder(folder);
  ModelConfig config =
      testing::tiny_model_config(tokenizer.vocab_size(), /*max_position_embeddings=*/128);
  config.pad_token_id = 0;
  // A larger std than Hugging Face's 0.02 so scores differ visibly between texts.
  Transformer model = make_random_transformer(config, 11, 0.3);
  SaveOptions options;
  if (with_head) {
    options.head = ScalarHead(ScalarHeadKind::kReward, model->config().hidden_size);
    at::NoGradGuard no_grad;
    options.head->linear->weight.normal_(0.0, 1.0);
  }
  save_pretrained(model, folder, options);
}

// Written once and shared by the tests; removed when the test binary exits.
const fs::path& reward_model_folder() {
  struct Written {
    testing::TempFolder folder{"learned-rm"};
    Written() { write_reward_model(folder.path()); }
  };
  static const Written written;
  return written.folder.path();
}

// The reference: one unpadded forward per text through a separately loaded model.
double direct_score(const fs::path& folder, const std::string& text, int64_t max_length = 0) {
  static const CharTokenizer tokenizer(kAlphabet);
  PretrainedWithHead loaded = load_pretrained_with_head(folder, ScalarHeadKind::kReward);
  c10::InferenceMode inference;
  std::vector<int64_t> ids = tokenizer.encode(text, /*add_special_tokens=*/true);
  if (max_length > 0 && static_cast<int64_t>(ids.size()) > max_length) {
    ids.erase(ids.begin(), ids.end() - max_length);
  }
  const int64_t length = static_cast<int64_t>(ids.size());
  at::Tensor tokens = at::tensor(ids, at::kLong).view({1, length});  // (1, T)
  at::Tensor mask = at::ones({1, length}, at::kLong);                // (1, T)
  return loaded.head->at_last_token(loaded.model->forward_hidden(tokens, mask), mask)
      .item<double>();
}

std::vector<Sample> samples_of_lengths() {
  return {
      Sample{.prompt = "what is 2+3? ", .completion = "5"},
      Sample{.prompt = "q ",
             .completion = "a much longer completion with many characters in it = 42."},
      Sample{.prompt = "sort 3 1 2: ", .completion = "1 2 3"},
      Sample{.prompt = "", .completion = "x"},
      Sample{.prompt = "twelve times eleven is ", .completion = "132"},
  };
}

TEST(LearnedRm, BatchScoresEqualUnpaddedDirectForward) {
  auto reward = make_reward("learned_rm",
                            {{"path", reward_model_folder().string()}, {"batch_size", 2}}, "test");
  EXPECT_TRUE(reward->prefers_batches());
  const std::vector<Sample> samples = samples_of_lengths();
  std::vector<RewardResult> results = reward->score_batch(samples, Deadline::max());
  ASSERT_EQ(results.size(), samples.size());
  std::set<double> distinct;
  for (size_t n = 0; n < samples.size(); ++n) {
    ASSERT_TRUE(results[n].value.has_value()) << n;
    const double expected =
        direct_score(reward_model_folder(), samples[n].prompt + samples[n].completion);
    EXPECT_NEAR(*results[n].value, expected, 1e-4 * (1.0 + std::fabs(expected))) << "sample " << n;
    distinct.insert(std::round(*results[n].value * 1e3));
  }
  EXPECT_GE(distinct.size(), 4u) << "the random model should tell the texts apart";
  // One at a time (no padding at all) gives the same numbers as in the batch.
  for (size_t n = 0; n < samples.size(); ++n) {
    EXPECT_NEAR(*reward->score(samples[n]).value, *results[n].value,
                1e-4 * (1.0 + std::fabs(*results[n].value)));
  }
}

TEST(LearnedRm, TruncatesFromTheLeftAndNormalizes) {
  const Sample long_sample{.prompt = "a very long prompt that will be cut ",
                           .completion = "and the end stays"};
  auto truncated = make_reward(
      "learned_rm", {{"path", reward_model_folder().string()}, {"max_length", 10}}, "test");
  RewardResult result = truncated->score(long_sample);
  EXPECT_NEAR(*result.value,
              direct_score(reward_model_folder(), long_sample.prompt + long_sample.completion, 10),
              1e-4);
  EXPECT_EQ(result.info["tokens"], 10);
  EXPECT_EQ(result.info["truncated"], true);

  auto plain = make_reward("learned_rm", {{"path", reward_model_folder().string()}}, "test");
  auto shifted = make_reward(
      "learned_rm",
      {{"path", reward_model_folder().string()}, {"normalize", {{"mean", 0.5}, {"std", 2.0}}}},
      "test");
  const double raw = *plain->score(long_sample).value;
  EXPECT_NEAR(*shifted->score(long_sample).value, (raw - 0.5) / 2.0, 1e-6);
}

TEST(LearnedRm, ConcurrentCallsThroughARewardSetAgree) {
  RewardSpec spec;
  spec.name = "learned_rm";
  spec.options = {{"path", reward_model_folder().string()}, {"batch_size", 3}};
  RewardSet set({spec}, "test");
  const std::vector<Sample> samples = samples_of_lengths();
  auto direct =
      make_reward("learned_rm", spec.options, "test")->score_batch(samples, Deadline::max());

  ThreadPool pool(2);
  std::vector<std::thread> callers;
  auto reward = make_reward("learned_rm", spec.options, "test");
  std::vector<std::vector<RewardResult>> concurrent(4);
  for (size_t t = 0; t < concurrent.size(); ++t) {
    callers.emplace_back([&, t] { concurrent[t] = reward->score_batch(samples, Deadline::max()); });
  }
  for (auto& c : callers) c.join();
  for (const auto& results : concurrent) {
    ASSERT_EQ(results.size(), samples.size());
    for (size_t n = 0; n < samples.size(); ++n)
      EXPECT_DOUBLE_EQ(*results[n].value, *direct[n].value);
  }
  BatchScores scores = set.score(samples, pool);
  EXPECT_EQ(scores.errors[0], 0);
  for (size_t n = 0; n < samples.size(); ++n) EXPECT_DOUBLE_EQ(scores.totals[n], *direct[n].value);
}

TEST(LearnedRm, EmptyTextIsScoredAtTheBosToken) {
  auto reward = make_reward("learned_rm", {{"path", reward_model_folder().string()}}, "test");
  // tokenizer(prompt + completion) adds <bos>, as transformers' tokenizer call does.
  RewardResult result = reward->score(Sample{});
  ASSERT_TRUE(result.value.has_value());
  EXPECT_EQ(result.info["tokens"], 1);
  EXPECT_NEAR(*result.value, direct_score(reward_model_folder(), ""), 1e-4);
}

TEST(LearnedRm, FolderWithoutHeadOrPathIsAConfigError) {
  const testing::TempFolder temp;
  const fs::path& policy = temp.path();
  write_reward_model(policy, /*with_head=*/false);
  try {
    make_reward("learned_rm", {{"path", policy.string()}}, "recipe.json: rewards[0].options");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(
        std::string(e.what()).find("recipe.json: rewards[0].options.path: " + policy.string()),
        std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("no reward head"), std::string::npos) << e.what();
  }
  try {
    make_reward("learned_rm", nlohmann::json::object(), "recipe.json: rewards[0].options");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "recipe.json: rewards[0].options: path: required key is missing"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_reward("learned_rm", {{"path", "/nonexistent/rm"}}, "test"), Error);
}

}  // namespace
}  // namespace r1kit
