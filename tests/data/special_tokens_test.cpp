// Special tokens as transformers' tokenizer(text) adds them (add_special_tokens,
// on by default): prepared documents and SFT prompt/response examples get the
// post-processor's BOS in front, chat examples never (their template writes
// their markers), and the switch turns them off. The tokenizer is the
// bpe_llama3_sequence fixture (Llama-3's Sequence post-processor).
#include <gtest/gtest.h>

#include "data/prepare.h"
#include "data/sft_data.h"
#include "data/token_shards.h"
#include "policy/char_tokenizer.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::TempFolder;

const fs::path kLlama3 = testing::fixture_path("tokenizers/bpe_llama3_sequence");

// The documents of a prepared folder as ids, eos separators included.
std::vector<std::vector<int64_t>> read_documents(const fs::path& folder) {
  auto shards = ShardSet::open(folder);
  std::vector<std::vector<int64_t>> documents;
  for (size_t s = 0; s < shards->num_shards(); ++s) {
    std::vector<int64_t> offsets = shards->document_offsets(s);
    for (size_t d = 0; d + 1 < offsets.size(); ++d) {
      std::vector<int64_t> ids(offsets[d + 1] - offsets[d]);
      shards->read(s, offsets[d], static_cast<int64_t>(ids.size()), ids.data());
      documents.push_back(ids);
    }
  }
  return documents;
}

std::vector<int64_t> concat(std::initializer_list<std::vector<int64_t>> parts) {
  std::vector<int64_t> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST(SpecialTokens, PreparedDocumentsStartWithTheBosUnlessTurnedOff) {
  const TempFolder temp;
  temp.write_file("corpus/a.txt", "What is 2+2?\n\nIt is 4.\n");
  auto tokenizer = load_tokenizer(kLlama3);
  const int64_t bos = tokenizer->post_processor().prefix().at(0);
  const int64_t eos = *tokenizer->eos_id();

  DataPrepareConfig config;
  config.inputs = {(temp / "corpus/a.txt").string()};
  config.output_dir = temp.make_folder("with").string();
  config.tokenizer = kLlama3.string();
  config.num_threads = 1;
  prepare_corpus(config, "test");
  EXPECT_EQ(
      read_documents(config.output_dir),
      (std::vector<std::vector<int64_t>>{concat({{bos}, tokenizer->encode("What is 2+2?"), {eos}}),
                                         concat({{bos}, tokenizer->encode("It is 4."), {eos}})}));

  config.output_dir = temp.make_folder("without").string();
  config.add_special_tokens = false;
  prepare_corpus(config, "test");
  EXPECT_EQ(read_documents(config.output_dir),
            (std::vector<std::vector<int64_t>>{concat({tokenizer->encode("What is 2+2?"), {eos}}),
                                               concat({tokenizer->encode("It is 4."), {eos}})}));
}

TEST(SpecialTokens, SftPromptResponseGetsTheBosChatDoesNot) {
  auto tokenizer = load_tokenizer(kLlama3);
  const int64_t bos = tokenizer->post_processor().prefix().at(0);
  const nlohmann::json line = {{"prompt", "What is 2+2?"}, {"response", " It is 4."}};
  std::vector<int64_t> prompt = tokenizer->encode("What is 2+2?"),
                       response = tokenizer->encode(" It is 4.");

  SftExample with = render_sft_example(line, *tokenizer);
  EXPECT_EQ(with.ids, concat({{bos}, prompt, response, {*tokenizer->eos_id()}}));
  ASSERT_EQ(with.loss_mask.size(), with.ids.size());
  EXPECT_EQ(with.loss_mask.front(), 0);  // the BOS is context, never a target
  EXPECT_EQ(with.loss_mask.back(), 1);
  EXPECT_EQ(with.ids, tokenizer->encode("What is 2+2? It is 4.<|endoftext|>", true));

  SftExample without = render_sft_example(line, *tokenizer, /*add_special_tokens=*/false);
  EXPECT_EQ(without.ids, concat({prompt, response, {*tokenizer->eos_id()}}));

  const nlohmann::json chat = {
      {"messages",
       {{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Hello"}}}}};
  EXPECT_EQ(render_sft_example(chat, *tokenizer).ids,
            render_sft_example(chat, *tokenizer, false).ids);
  EXPECT_NE(render_sft_example(chat, *tokenizer).ids.front(), bos);
}

TEST(SpecialTokens, SftFileOptionReachesEveryLine) {
  const TempFolder temp;
  temp.write_file("sft.jsonl",
                  "{\"prompt\": \"1+1=\", \"response\": \"2\"}\n"
                  "{\"prompt\": \"2+2=\", \"response\": \"4\"}\n");
  CharTokenizer tokenizer("0123456789+=");
  const int64_t bos = *tokenizer.bos_id();
  const std::string path = (temp / "sft.jsonl").string();
  for (const SftExample& example : load_sft_jsonl(path, tokenizer, {}).examples)
    EXPECT_EQ(example.ids.front(), bos);
  for (const SftExample& example :
       load_sft_jsonl(path, tokenizer, {.add_special_tokens = false}).examples)
    EXPECT_NE(example.ids.front(), bos);
}

}  // namespace
}  // namespace r1kit
