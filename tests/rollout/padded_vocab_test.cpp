// A model whose vocabulary is padded past its tokenizer's (every Qwen2.5
// checkpoint: 151,936 rows for 151,665 tokens) never samples a padding id,
// greedy or not, whatever the processor order; and a model's end-of-sequence
// ids come from config.json, generation_config.json (an int or a list) and the
// tokenizer. The models are steered: their lm_head makes one id the most likely
// at every step, so a test reaches a padding id on purpose.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "common/error.h"
#include "rollout/generation_config.h"
#include "rollout/sampler.h"
#include "tests/rollout/rollout_test_util.h"

namespace r1kit {
namespace {

using testing::kRolloutContext;
using testing::tiny_tokenizer;

constexpr int64_t kPaddingRows = 8;

// A tiny random policy whose lm_head is zero except two rows: `favourite`
// scores about 5.7 and `runner_up` about 2.8 at every step, the rest 0. Every
// embedding leans on residual dimension 0 (value 100), so the final norm's
// output is positive there whatever the layers add.
std::shared_ptr<PolicyWeights> steered_policy(ModelConfig config, int64_t favourite,
                                              int64_t runner_up) {
  Transformer model = make_random_transformer(config, 7);
  torch::NoGradGuard no_grad;
  model->model->embed_tokens->weight.select(1, 0).fill_(100.0);
  at::Tensor head = model->output_weight();
  head.zero_();
  head[favourite][0] = 1.0;
  head[runner_up][0] = 0.5;
  return std::make_shared<PolicyWeights>(model);
}

std::vector<std::vector<int64_t>> prompts(const Tokenizer& tokenizer) {
  return {tokenizer.encode("12+30="), tokenizer.encode("7*8=")};
}

TEST(PaddedVocab, GreedyAndSampledGenerationNeverPickAPaddingId) {
  auto tokenizer = tiny_tokenizer();
  const int64_t known = tokenizer->vocab_size();
  const int64_t padding = known + 3;
  const int64_t runner_up = *tokenizer->token_to_id("4");
  RolloutEngine engine(
      steered_policy(testing::tiny_model_config(known + kPaddingRows, kRolloutContext), padding,
                     runner_up),
      tokenizer.get(), {.max_batch_size = 4});

  SamplingParams greedy{.temperature = 0.0, .max_new_tokens = 6};
  for (const Completion& completion : engine.generate(prompts(*tokenizer), greedy)) {
    EXPECT_EQ(completion.token_ids, std::vector<int64_t>(6, runner_up));
    EXPECT_EQ(completion.text, "444444");
  }

  SamplingParams sampled{.temperature = 1.0, .max_new_tokens = 12, .n = 4, .seed = 5};
  std::set<int64_t> drawn;
  for (const Completion& completion : engine.generate(prompts(*tokenizer), sampled)) {
    ASSERT_FALSE(completion.token_ids.empty());
    for (int64_t id : completion.token_ids) {
      EXPECT_LT(id, known);
      drawn.insert(id);
    }
    std::vector<int64_t> shown = completion.token_ids;
    if (completion.finish_reason == FinishReason::kStop) shown.pop_back();  // the eos
    EXPECT_EQ(completion.text, tokenizer->decode(shown));
  }
  EXPECT_GT(drawn.size(), 3u);  // sampling, not argmax

  // A custom order that leaves mask_padded_vocab out is masked all the same.
  sampled.logits_processors = {"temperature", "top_k", "top_p"};
  for (const Completion& completion : engine.generate(prompts(*tokenizer), sampled)) {
    for (int64_t id : completion.token_ids) EXPECT_LT(id, known);
  }
  greedy.logits_processors = {"temperature"};
  for (const Completion& completion : engine.generate(prompts(*tokenizer), greedy))
    EXPECT_EQ(completion.token_ids, std::vector<int64_t>(6, runner_up));
}

TEST(PaddedVocab, WithoutATokenizerThePaddingIdIsAnOrdinaryId) {
  auto tokenizer = tiny_tokenizer();
  const int64_t padding = tokenizer->vocab_size() + 3;
  RolloutEngine engine(steered_policy(testing::tiny_model_config(
                                          tokenizer->vocab_size() + kPaddingRows, kRolloutContext),
                                      padding, 5),
                       nullptr);
  SamplingParams greedy{.temperature = 0.0, .max_new_tokens = 3};
  EXPECT_EQ(engine.generate(prompts(*tokenizer), greedy)[0].token_ids,
            std::vector<int64_t>(3, padding));
}

TEST(PaddedVocab, MaskedPaddedVocabTurnsTheProcessorOnOnlyForAPaddedModel) {
  SamplingParams params;
  EXPECT_FALSE(masked_padded_vocab(params, 100, 100).mask_padded_vocab);
  EXPECT_FALSE(masked_padded_vocab(params, 100, 0).mask_padded_vocab);  // no tokenizer size
  EXPECT_TRUE(masked_padded_vocab(params, 108, 100).mask_padded_vocab);
  EXPECT_TRUE(masked_padded_vocab(params, 108, 100).logits_processors.empty());  // default order

  params.logits_processors = {"repetition_penalty", "temperature", "top_p"};
  EXPECT_EQ(masked_padded_vocab(params, 108, 100).logits_processors,
            (std::vector<std::string>{"repetition_penalty", "mask_padded_vocab", "temperature",
                                      "top_p"}));
  params.logits_processors = {"temperature", "mask_padded_vocab"};
  EXPECT_EQ(masked_padded_vocab(params, 108, 100).logits_processors, params.logits_processors);
  SamplingParams masked = masked_padded_vocab(params, 108, 100);
  EXPECT_NO_THROW(masked.validate(108));
}

TEST(GenerationConfig, GenerationStopsOnAnyEosOfTheListInGenerationConfig) {
  auto tokenizer = tiny_tokenizer();
  const int64_t vocab = tokenizer->vocab_size();
  const int64_t end_of_turn = *tokenizer->token_to_id("=");  // an eos only in the list
  ModelConfig config = testing::tiny_model_config(vocab, kRolloutContext);
  config.eos_token_ids = {*tokenizer->token_to_id("9")};
  SamplingParams greedy{.temperature = 0.0, .max_new_tokens = 5};

  RolloutEngine without_list(steered_policy(config, end_of_turn, 5), tokenizer.get());
  Completion plain = without_list.generate(prompts(*tokenizer), greedy)[0];
  EXPECT_EQ(plain.finish_reason, FinishReason::kLength);
  EXPECT_EQ(plain.token_ids.size(), 5u);

  config.generation_config = {{"eos_token_id", {*tokenizer->token_to_id("9"), end_of_turn}}};
  RolloutEngine with_list(steered_policy(config, end_of_turn, 5), tokenizer.get());
  Completion stopped = with_list.generate(prompts(*tokenizer), greedy)[0];
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped.token_ids, std::vector<int64_t>{end_of_turn});
  EXPECT_EQ(stopped.text, "");

  greedy.stop_at_eos = false;
  EXPECT_EQ(with_list.generate(prompts(*tokenizer), greedy)[0].token_ids.size(), 5u);
}

TEST(GenerationConfig, EndOfSequenceIdsJoinTokenizerConfigAndGenerationConfig) {
  auto tokenizer = tiny_tokenizer();
  const int64_t eos = *tokenizer->eos_id();
  ModelConfig config;
  EXPECT_EQ(end_of_sequence_ids(config, tokenizer.get()), std::vector<int64_t>{eos});
  EXPECT_TRUE(end_of_sequence_ids(config, nullptr).empty());
  config.eos_token_ids = {eos, 151645};
  config.generation_config = {{"eos_token_id", {151645, 151643}}};
  EXPECT_EQ(end_of_sequence_ids(config, tokenizer.get()),
            (std::vector<int64_t>{eos, 151645, 151643}));
  config.generation_config = {{"eos_token_id", 7}};
  EXPECT_EQ(end_of_sequence_ids(config, nullptr), (std::vector<int64_t>{eos, 151645, 7}));
  config.generation_config = {{"eos_token_id", nullptr}};
  EXPECT_EQ(end_of_sequence_ids(config, nullptr), (std::vector<int64_t>{eos, 151645}));
  config.generation_config = {{"eos_token_id", "<eos>"}};
  EXPECT_THROW(end_of_sequence_ids(config, nullptr), Error);
}

TEST(GenerationConfig, DefaultsFillTheKnobsTheUserLeftUnset) {
  // Qwen2.5-7B-Instruct's generation_config.json.
  const nlohmann::json qwen = {
      {"do_sample", true}, {"temperature", 0.7},         {"top_p", 0.8},
      {"top_k", 20},       {"repetition_penalty", 1.05}, {"eos_token_id", {151645, 151643}}};
  SamplingParams params;
  EXPECT_EQ(apply_generation_config(qwen, {}, params, "test"),
            (std::vector<std::string>{"temperature", "top_p", "top_k", "repetition_penalty"}));
  EXPECT_DOUBLE_EQ(params.temperature, 0.7);
  EXPECT_DOUBLE_EQ(params.top_p, 0.8);
  EXPECT_EQ(params.top_k, 20);
  EXPECT_DOUBLE_EQ(params.repetition_penalty, 1.05);

  SamplingParams given{.temperature = 0.0, .top_k = 5};
  apply_generation_config(qwen, {"temperature", "top_k"}, given, "test");
  EXPECT_DOUBLE_EQ(given.temperature, 0.0);
  EXPECT_EQ(given.top_k, 5);
  EXPECT_DOUBLE_EQ(given.top_p, 0.8);

  SamplingParams greedy;
  apply_generation_config({{"do_sample", false}, {"temperature", 0.6}}, {}, greedy, "test");
  EXPECT_DOUBLE_EQ(greedy.temperature, 0.0);
  SamplingParams untouched;
  EXPECT_TRUE(apply_generation_config(nlohmann::json(), {}, untouched, "test").empty());
  EXPECT_TRUE(apply_generation_config({{"bos_token_id", 1}}, {}, untouched, "test").empty());
  EXPECT_DOUBLE_EQ(untouched.temperature, 1.0);
  EXPECT_THROW(apply_generation_config({{"top_p", "high"}}, {}, untouched, "test"), Error);
}

}  // namespace
}  // namespace r1kit
