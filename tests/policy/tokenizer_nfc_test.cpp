// The NFC normalizer of tokenizer.json (Qwen2's): decomposed text encodes like
// its composed form, and the ids equal Hugging Face `tokenizers` 0.23 on the
// bpe512 fixture with {"normalizer": {"type": "NFC"}} (expected ids printed by
// that library once, by loading the edited JSON with Tokenizer.from_str).
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "policy/tokenizer.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

std::unique_ptr<Tokenizer> bpe512_with_nfc() {
  nlohmann::json json =
      read_json_file(testing::fixture_path("tokenizers/bpe512/tokenizer.json").string());
  json["normalizer"] = {{"type", "NFC"}};
  return tokenizer_from_json(json, "bpe512+NFC");
}

TEST(TokenizerNfc, DecomposedTextEncodesLikeComposed) {
  auto tokenizer = bpe512_with_nfc();
  EXPECT_EQ(tokenizer->encode("cafe\u0301"), tokenizer->encode("caf\u00e9"));
  nlohmann::json plain =
      read_json_file(testing::fixture_path("tokenizers/bpe512/tokenizer.json").string());
  auto without = tokenizer_from_json(plain, "bpe512");
  EXPECT_NE(without->encode("cafe\u0301"), without->encode("caf\u00e9"));
}

TEST(TokenizerNfc, IdsMatchTokenizersLibrary) {
  auto tokenizer = bpe512_with_nfc();
  EXPECT_EQ(tokenizer->encode("cafe\u0301 na\u0308ive"),
            (std::vector<int64_t>{344, 74, 132, 107, 328, 132, 102, 77, 299}));
  EXPECT_EQ(tokenizer->encode("\u212b ohm \u2126"),
            (std::vector<int64_t>{132, 232, 225, 83, 76, 81, 225, 143, 107}));
  EXPECT_EQ(tokenizer->encode("e\u0301<|im_end|>e\u0301"),
            (std::vector<int64_t>{132, 107, 2, 132, 107}));
}

TEST(TokenizerNfc, UnknownNormalizerNamesTheFile) {
  nlohmann::json json =
      read_json_file(testing::fixture_path("tokenizers/bpe512/tokenizer.json").string());
  json["normalizer"] = {{"type", "Lowercase"}};
  try {
    tokenizer_from_json(json, "tok.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tok.json: unsupported normalizer"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit
