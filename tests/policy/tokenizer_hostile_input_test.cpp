// tokenizer.json files whose token ids are not integers (1e300, 2.5): a data
// error naming the entry, where converting them to int64_t was undefined
// behaviour (found by fuzz/tokenizer_json_fuzzer.cpp under UBSan).
#include <gtest/gtest.h>

#include <string>

#include "common/config.h"
#include "common/error.h"
#include "policy/tokenizer.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

nlohmann::json fixture(const std::string& name) {
  return read_json_file(testing::fixture_path("tokenizers/" + name + "/tokenizer.json").string());
}

// The message of the data error that loading `json` throws, or "" when it loads.
std::string load_error(const nlohmann::json& json) {
  try {
    tokenizer_from_json(json, "tokenizer.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData) << e.what();
    return e.what();
  }
  return "";
}

TEST(TokenizerHostileInput, VocabularyIdThatIsNotAnIntegerIsADataError) {
  for (const std::string name : {"bpe512", "char"}) {
    for (const nlohmann::json id : {nlohmann::json(1e300), nlohmann::json(2.5)}) {
      nlohmann::json json = fixture(name);
      json["model"]["vocab"].begin().value() = id;
      const std::string message = load_error(json);
      EXPECT_NE(message.find("integer id"), std::string::npos) << name << ": " << message;
      EXPECT_NE(message.find("model.vocab"), std::string::npos) << name << ": " << message;
    }
  }
}

TEST(TokenizerHostileInput, AddedTokenIdThatIsNotAnIntegerIsADataError) {
  nlohmann::json json = fixture("bpe512");
  json["added_tokens"] = {{{"id", -1e300}, {"content", "<x>"}}};
  const std::string message = load_error(json);
  EXPECT_NE(message.find("added_tokens[0]: id: expected an integer id"), std::string::npos)
      << message;
}

TEST(TokenizerHostileInput, PostProcessorIdThatIsNotAnIntegerIsADataError) {
  nlohmann::json json = fixture("bpe_llama3");
  ASSERT_EQ(json["post_processor"]["type"], "TemplateProcessing");
  for (auto& [name, token] : json["post_processor"]["special_tokens"].items()) {
    token["ids"] = {1e300};
  }
  EXPECT_NE(load_error(json).find("expected an integer id"), std::string::npos);

  nlohmann::json bert = fixture("bpe512");
  bert["post_processor"] = {
      {"type", "BertProcessing"}, {"cls", {"<s>", 1e300}}, {"sep", {"</s>", 2}}};
  EXPECT_NE(load_error(bert).find("cls: expected an integer id"), std::string::npos);
}

TEST(TokenizerHostileInput, IntegerIdsStillLoad) {
  EXPECT_EQ(load_error(fixture("bpe512")), "");
  EXPECT_EQ(load_error(fixture("bpe_llama3")), "");
  EXPECT_EQ(load_error(fixture("char")), "");
}

}  // namespace
}  // namespace r1kit
