// encode(text, add_special_tokens=true) against Hugging Face `tokenizers` for
// the post-processors real checkpoints ship (Llama-3: a Sequence of ByteLevel
// and a TemplateProcessing putting a BOS in front; Qwen2: a lone ByteLevel), and
// StreamDecoder's handling of ids the tokenizer cannot decode. Golden values:
// tools/fixtures_tokenizer.py (tests/fixtures/tokenizers/*/expected.json).
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "policy/char_tokenizer.h"
#include "policy/tokenizer.h"
#include "tests/support/fixture_files.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

const std::filesystem::path kFixtures = testing::fixture_path("tokenizers");

using testing::from_hex;
using testing::read_json;

TEST(TokenizerPostProcessor, SpecialTokensMatchTokenizersForLlama3AndQwen2Layouts) {
  for (const std::string name : {"bpe_llama3", "bpe_llama3_sequence", "bpe512_bytelevel"}) {
    SCOPED_TRACE(name);
    auto tokenizer = load_tokenizer(kFixtures / name);
    nlohmann::json expected = read_json(kFixtures / name / "expected.json");
    int64_t checked = 0;
    for (const nlohmann::json& c : expected["cases"]) {
      SCOPED_TRACE(c["name"].get<std::string>());
      ASSERT_TRUE(c.contains("ids_with_special"));
      std::string text = from_hex(c["text_hex"]);
      EXPECT_EQ(tokenizer->encode(text), c["ids"].get<std::vector<int64_t>>());
      EXPECT_EQ(tokenizer->encode(text, /*add_special_tokens=*/true),
                c["ids_with_special"].get<std::vector<int64_t>>());
      ++checked;
    }
    EXPECT_GT(checked, 10);
  }
}

TEST(TokenizerPostProcessor, PrefixIsTheBosOfTheTemplateAndNothingForByteLevel) {
  auto llama = load_tokenizer(kFixtures / "bpe_llama3_sequence");
  const int64_t bos = *llama->token_to_id("<|endoftext|>");
  EXPECT_EQ(llama->post_processor().prefix(), std::vector<int64_t>{bos});
  EXPECT_TRUE(llama->post_processor().suffix().empty());
  EXPECT_EQ(llama->bos_id(), bos);  // the template's leading token is the BOS role
  std::vector<int64_t> ids = llama->encode("12+34=46", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), bos);

  auto qwen = load_tokenizer(kFixtures / "bpe512_bytelevel");
  EXPECT_TRUE(qwen->post_processor().prefix().empty());
  EXPECT_TRUE(qwen->post_processor().suffix().empty());
  EXPECT_EQ(qwen->encode("12+34=46", true), qwen->encode("12+34=46"));
}

TEST(TokenizerPostProcessor, SavedSequenceLoadsWithTheSameSpecialTokens) {
  testing::TempFolder folder("post_processor_roundtrip");
  auto llama = load_tokenizer(kFixtures / "bpe_llama3_sequence");
  llama->save(folder.path() / "tokenizer.json");
  auto again = load_tokenizer(folder.path() / "tokenizer.json");
  EXPECT_EQ(again->encode("What is 2+2?", true), llama->encode("What is 2+2?", true));
  EXPECT_EQ(again->post_processor().json(), llama->post_processor().json());
}

TEST(StreamDecoder, LeavesIdsOutsideTheVocabularyOutOfTheText) {
  CharTokenizer tokenizer("0123456789+=");
  const int64_t padding = tokenizer.vocab_size() + 3;  // a padded model's row
  EXPECT_THROW(tokenizer.decode({padding}), Error);    // decode() stays strict
  StreamDecoder decoder(tokenizer);
  std::string text = decoder.push(*tokenizer.token_to_id("1"));
  text += decoder.push(padding);
  text += decoder.push(std::vector<int64_t>{*tokenizer.token_to_id("+"), -1});
  text += decoder.push(*tokenizer.token_to_id("2"));
  text += decoder.finish();
  EXPECT_EQ(text, "1+2");
  EXPECT_EQ(decoder.undecodable_ids(), 2);

  StreamDecoder skipping(tokenizer, /*skip_special_tokens=*/true);
  EXPECT_EQ(skipping.push(padding), "");
  EXPECT_EQ(skipping.undecodable_ids(), 1);
}

}  // namespace
}  // namespace r1kit
