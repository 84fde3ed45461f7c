// SFT data: the loss mask covers only responses and assistant turns, bad
// JSONL lines are reported with file and line, batches respect the token budget.
#include "data/sft_data.h"

#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "tests/data/data_test_util.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::bpe512;

std::vector<int64_t> concat(std::initializer_list<std::vector<int64_t>> parts) {
  std::vector<int64_t> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// The ids where the mask is 1, decoded.
std::string learned_text(const SftExample& example) {
  std::vector<int64_t> ids;
  for (size_t t = 0; t < example.ids.size(); ++t) {
    if (example.loss_mask[t]) ids.push_back(example.ids[t]);
  }
  return bpe512()->decode(ids);
}

TEST(SftData, PromptResponseLearnsTheResponseAndEos) {
  const Tokenizer& tokenizer = *bpe512();
  SftExample example =
      render_sft_example({{"prompt", "What is 2+2?"}, {"response", " It is 4."}}, tokenizer);
  std::vector<int64_t> prompt = tokenizer.encode("What is 2+2?"),
                       response = tokenizer.encode(" It is 4.");
  EXPECT_EQ(example.ids, concat({prompt, response, {*tokenizer.eos_id()}}));
  std::vector<uint8_t> mask(prompt.size(), 0);
  mask.insert(mask.end(), response.size() + 1, 1);
  EXPECT_EQ(example.loss_mask, mask);
  // "completion" is accepted for "response" (TRL's prompt-completion form).
  EXPECT_EQ(
      render_sft_example({{"prompt", "What is 2+2?"}, {"completion", " It is 4."}}, tokenizer).ids,
      example.ids);
}

TEST(SftData, ChatLearnsOnlyAssistantTurns) {
  nlohmann::json line = {{"messages",
                          {{{"role", "system"}, {"content", "Be brief."}},
                           {{"role", "user"}, {"content", "Hi"}},
                           {{"role", "assistant"}, {"content", "Hello!"}},
                           {{"role", "user"}, {"content", "2+2?"}},
                           {{"role", "assistant"}, {"content", "4"}},
                           {{"role", "user"}, {"content", "unanswered"}}}}};
  SftExample example = render_sft_example(line, *bpe512());
  EXPECT_EQ(bpe512()->decode(example.ids),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>");
  // bpe512's eos is <|im_end|>: no extra eos is appended.
  EXPECT_EQ(learned_text(example), "Hello!<|im_end|>4<|im_end|>");

  nlohmann::json conversational = {
      {"prompt", {{{"role", "user"}, {"content", "Hi"}}}},
      {"completion", {{{"role", "assistant"}, {"content", "Hello!"}}}}};
  EXPECT_EQ(learned_text(render_sft_example(conversational, *bpe512())), "Hello!<|im_end|>");
}

TEST(SftData, BadLinesAreSkippedWithFileAndLine) {
  const testing::TempFolder folder;
  const std::string lines =
      "{\"prompt\": \"a\", \"response\": \"b\"}\n"
      "{\"prompt\": \"a\", \"response\": \n"
      "\n"
      "{\"prompt\": \"a\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
      "{\"messages\": [{\"role\": \"bot\", \"content\": \"hi\"}]}\n"
      "{\"prompt\": \"a\", \"response\": 3}\n"
      "{\"messages\": [{\"role\": \"assistant\", \"content\": \"ok\"}]}\n";
  const std::string path = folder.write_file("train.jsonl", lines).string();
  SftDataset data = load_sft_jsonl(path, *bpe512(), {});
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].line, 1);
  EXPECT_EQ(data.examples[1].line, 8);
  ASSERT_EQ(data.skipped.size(), 5u);
  EXPECT_EQ(data.skipped[0].rfind(path + ":2: not valid JSON (", 0), 0u) << data.skipped[0];
  data.skipped.erase(data.skipped.begin());
  EXPECT_EQ(data.skipped,
            (std::vector<std::string>{
                path + ":4: no \"response\" or \"completion\" key",
                path + ":5: no assistant message to learn from",
                path + ":6: messages[0]: role \"bot\" is not system, user, assistant or tool",
                path + ":7: \"response\" is not a string",
            }));
  try {
    load_sft_jsonl(path, *bpe512(), {.strict = true});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":2: not valid JSON (", 0), 0u) << e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kData);
  }
  EXPECT_THROW(load_sft_jsonl((folder / "missing.jsonl").string(), *bpe512(), {}), Error);
}

TEST(SftData, LongExamplesAreTruncatedOrDropped) {
  const testing::TempFolder folder;
  const std::string long_prompt(200, 'q');
  const std::string lines =
      "{\"prompt\": \"short\", \"response\": \" answer text here\"}\n"
      "{\"prompt\": \"" +
      long_prompt +
      "\", \"response\": \" x\"}\n"
      "{\"prompt\": \"p\", \"response\": \"" +
      long_prompt + "\"}\n";
  const std::string path = folder.write_file("train.jsonl", lines).string();
  SftDataset truncated = load_sft_jsonl(path, *bpe512(), {.max_length = 20});
  // Line 2's response lies beyond 20 tokens: nothing left to learn.
  EXPECT_EQ(truncated.examples.size(), 2u);
  EXPECT_EQ(truncated.truncated, 1);
  ASSERT_EQ(truncated.skipped.size(), 1u);
  EXPECT_EQ(truncated.skipped[0], path + ":2: no response tokens within max_length 20");
  EXPECT_EQ(truncated.examples[1].ids.size(), 20u);
  SftDataset dropped = load_sft_jsonl(path, *bpe512(), {.max_length = 20, .truncation = "drop"});
  EXPECT_EQ(dropped.examples.size(), 1u);
  EXPECT_EQ(dropped.skipped.size(), 2u);
}

std::vector<SftExample> examples_of_lengths(const std::vector<size_t>& lengths) {
  std::vector<SftExample> examples;
  for (size_t i = 0; i < lengths.size(); ++i) {
    SftExample example;
    example.ids.assign(lengths[i], static_cast<int64_t>(i + 5));
    example.loss_mask.assign(lengths[i], 1);
    example.loss_mask[0] = 0;
    example.line = static_cast<int64_t>(i + 1);
    examples.push_back(example);
  }
  return examples;
}

TEST(SftData, BatchesStayWithinTheTokenBudget) {
  std::vector<size_t> lengths;
  std::mt19937_64 lengths_rng(3);
  for (int i = 0; i < 300; ++i) lengths.push_back(2 + lengths_rng() % 60);
  std::vector<SftExample> examples = examples_of_lengths(lengths);
  std::mt19937_64 rng(11), same_rng(11);
  auto batches = plan_sft_batches(examples, 128, &rng);
  EXPECT_EQ(batches, plan_sft_batches(examples, 128, &same_rng));
  std::multiset<size_t> seen;
  for (const auto& batch : batches) {
    size_t longest = 0;
    for (size_t row : batch) longest = std::max(longest, examples[row].ids.size());
    EXPECT_LE(longest * batch.size(), 128u);
    seen.insert(batch.begin(), batch.end());
  }
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()).size(), 300u);
  // Sorting by length keeps padding small: well under half of the budget is padding.
  size_t real = 0, padded = 0;
  for (const auto& batch : batches) {
    SftBatch collated = collate_sft(examples, batch, /*pad_id=*/0);
    real += collated.attention_mask.sum().item<int64_t>();
    padded += collated.tokens.numel();
  }
  EXPECT_GT(static_cast<double>(real) / padded, 0.8);
}

TEST(SftData, CollatePadsRightWithMasks) {
  std::vector<SftExample> examples = examples_of_lengths({3, 5});
  SftBatch batch = collate_sft(examples, {1, 0}, /*pad_id=*/99);
  EXPECT_TRUE(
      batch.tokens.equal(at::tensor({6, 6, 6, 6, 6, 5, 5, 5, 99, 99}, at::kLong).view({2, 5})));
  EXPECT_TRUE(batch.attention_mask.equal(
      at::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, at::kLong).view({2, 5})));
  EXPECT_TRUE(
      batch.loss_mask.equal(at::tensor({0, 1, 1, 1, 1, 0, 1, 1, 0, 0}, at::kLong).view({2, 5})));
  EXPECT_EQ(batch.loss_tokens, 6);
}

TEST(SftData, EvalSplitIsFixedAndDisjoint) {
  SftDataset data{examples_of_lengths(std::vector<size_t>(200, 4)), {}, 0};
  SftDataset again = data;
  std::vector<SftExample> eval = split_off_eval(data, 0.25, 1000);
  EXPECT_EQ(data.examples.size() + eval.size(), 200u);
  EXPECT_GT(eval.size(), 30u);
  EXPECT_LT(eval.size(), 70u);
  std::vector<SftExample> eval_again = split_off_eval(again, 0.25, 1000);
  ASSERT_EQ(eval_again.size(), eval.size());
  for (size_t i = 0; i < eval.size(); ++i) EXPECT_EQ(eval[i].line, eval_again[i].line);
  std::set<int64_t> train_lines;
  for (const auto& example : data.examples) train_lines.insert(example.line);
  for (const auto& example : eval) EXPECT_EQ(train_lines.count(example.line), 0u);
  SftDataset capped{examples_of_lengths(std::vector<size_t>(200, 4)), {}, 0};
  EXPECT_EQ(split_off_eval(capped, 0.25, 10).size(), 10u);
  EXPECT_EQ(capped.examples.size(), 190u);
}

}  // namespace
}  // namespace r1kit
