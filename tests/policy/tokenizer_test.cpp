// Tokenizers against Hugging Face `tokenizers`: ids, decodes and special
// tokens for hard strings. Golden values: tools/fixtures_tokenizer.py
// (tests/fixtures/tokenizers/*/expected.json).
#include "policy/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.h"
#include "policy/bpe_tokenizer.h"
#include "policy/char_tokenizer.h"
#include "policy/tokenizer_utf8.h"
#include "tests/support/fixture_files.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::TempFolder;

const std::filesystem::path kFixtures = testing::fixture_path("tokenizers");
const std::vector<std::string> kBpeFixtures = {"bpe512", "bpe512_gpt2", "bpe_llama3",
                                               "bpe_gpt2_noprefix"};

using testing::from_hex;
using testing::read_json;

TEST(BpeTokenizer, IdsAndDecodesMatchTokenizersOnHardStrings) {
  for (const std::string& name : kBpeFixtures) {
    SCOPED_TRACE(name);
    auto tokenizer = load_tokenizer(kFixtures / name);
    EXPECT_EQ(tokenizer->kind(), "bpe");
    nlohmann::json expected = read_json(kFixtures / name / "expected.json");
    for (const nlohmann::json& c : expected["cases"]) {
      SCOPED_TRACE(c["name"].get<std::string>());
      std::string text = from_hex(c["text_hex"]);
      std::vector<int64_t> ids = tokenizer->encode(text);
      EXPECT_EQ(ids, c["ids"].get<std::vector<int64_t>>());
      EXPECT_EQ(tokenizer->decode(ids), from_hex(c["decoded_hex"]));
      EXPECT_EQ(tokenizer->decode(ids, /*skip_special_tokens=*/true),
                from_hex(c["decoded_skip_hex"]));
      if (c.contains("ids_with_special")) {
        EXPECT_EQ(tokenizer->encode(text, true), c["ids_with_special"].get<std::vector<int64_t>>());
      }
    }
    for (const nlohmann::json& p : expected["partial_decodes"]) {
      EXPECT_EQ(tokenizer->decode(p["ids"].get<std::vector<int64_t>>()),
                from_hex(p["decoded_hex"]));
    }
  }
}

TEST(BpeTokenizer, DecodeInvertsEncodeOnValidUtf8) {
  for (const std::string& name : kBpeFixtures) {
    SCOPED_TRACE(name);
    auto tokenizer = load_tokenizer(kFixtures / name);
    nlohmann::json expected = read_json(kFixtures / name / "expected.json");
    int checked = 0;
    for (const nlohmann::json& c : expected["cases"]) {
      std::string text = from_hex(c["text_hex"]);
      // The GPT-2 form adds a space before each piece, which decode keeps.
      if (name == "bpe512_gpt2") continue;
      if (!utf8_is_valid(text)) {
        // Invalid bytes come back as U+FFFD, like the repaired text.
        EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), utf8_repair(text));
        continue;
      }
      EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text) << c["name"];
      ++checked;
    }
    if (name != "bpe512_gpt2") EXPECT_GT(checked, 20);
  }
}

TEST(BpeTokenizer, SpecialTokensComeFromConfigAndMatchWhole) {
  auto tokenizer = load_tokenizer(kFixtures / "bpe512");
  EXPECT_EQ(tokenizer->vocab_size(), 512);
  ASSERT_TRUE(tokenizer->eos_id().has_value());
  EXPECT_EQ(*tokenizer->eos_id(), *tokenizer->token_to_id("<|im_end|>"));
  EXPECT_EQ(*tokenizer->pad_id(), *tokenizer->token_to_id("<|endoftext|>"));
  EXPECT_FALSE(tokenizer->bos_id().has_value());
  EXPECT_NE(tokenizer->chat_template().find("<|im_start|>"), std::string::npos);
  int64_t think = *tokenizer->token_to_id("<think>");
  EXPECT_TRUE(tokenizer->is_special(think));
  EXPECT_EQ(tokenizer->id_to_token(think), "<think>");
  EXPECT_EQ(tokenizer->encode("a<think>b").at(1), think);
  EXPECT_EQ(tokenizer->decode({think}, true), "");
  EXPECT_FALSE(tokenizer->is_special(*tokenizer->token_to_id("a")));
  EXPECT_THROW(tokenizer->decode({512}), Error);
  EXPECT_THROW(tokenizer->id_to_token(-1), Error);

  // The Llama-3 form: <bos> from the post-processor, a non-special added token kept by skip.
  auto llama = load_tokenizer(kFixtures / "bpe_llama3");
  EXPECT_EQ(llama->bos_id(), llama->token_to_id("<|endoftext|>"));
  int64_t tool = *llama->token_to_id("<tool_call>");
  EXPECT_FALSE(llama->is_special(tool));
  EXPECT_EQ(llama->decode(llama->encode("x<tool_call>y"), true), "x<tool_call>y");
}

TEST(BpeTokenizer, ModelFoldersHoldTheTrainedTokenizer) {
  auto reference = load_tokenizer(kFixtures / "bpe512");
  for (const char* folder : testing::kFixtureModels) {
    auto tokenizer = load_tokenizer(testing::fixture_path(folder));
    EXPECT_EQ(tokenizer->vocab_size(), 512) << folder;
    std::string text = "<|im_start|>user\nWhat is 12+30?<|im_end|>";
    EXPECT_EQ(tokenizer->encode(text), reference->encode(text)) << folder;
  }
}

TEST(BpeTokenizer, SaveThenLoadGivesSameIds) {
  const TempFolder temp;
  const std::filesystem::path& dir = temp.path();
  for (const std::string& name : {std::string("bpe512"), std::string("bpe_llama3")}) {
    auto tokenizer = load_tokenizer(kFixtures / name);
    tokenizer->save_folder(dir);
    auto again = load_tokenizer(dir);
    EXPECT_EQ(again->eos_id(), tokenizer->eos_id());
    EXPECT_EQ(again->chat_template(), tokenizer->chat_template());
    for (const nlohmann::json& c : read_json(kFixtures / name / "expected.json")["cases"]) {
      std::string text = from_hex(c["text_hex"]);
      EXPECT_EQ(again->encode(text, true), tokenizer->encode(text, true))
          << name << " " << c["name"];
    }
  }
}

TEST(BpeTokenizer, ConcurrentEncodeIsConsistent) {
  auto tokenizer = load_tokenizer(kFixtures / "bpe512");
  nlohmann::json cases = read_json(kFixtures / "bpe512" / "expected.json")["cases"];
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 50; ++round) {
        for (const nlohmann::json& c : cases) {
          if (tokenizer->encode(from_hex(c["text_hex"])) != c["ids"].get<std::vector<int64_t>>())
            ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(StreamDecoder, EmitsWholeCharactersAndSumsToDecode) {
  auto tokenizer = load_tokenizer(kFixtures / "bpe512");
  std::vector<int64_t> ids = tokenizer->encode("Hi 😀👍🏽 日本語 <think>ok</think>");
  StreamDecoder stream(*tokenizer);
  std::string text;
  for (int64_t id : ids) {
    std::string piece = stream.push(id);
    EXPECT_TRUE(utf8_is_valid(piece));
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "a cut character leaked as U+FFFD";
    text += piece;
  }
  text += stream.finish();
  EXPECT_EQ(text, tokenizer->decode(ids));
  // An emoji cut after its first byte token is held back, then flushed as U+FFFD.
  std::vector<int64_t> emoji = tokenizer->encode("😀");
  ASSERT_GT(emoji.size(), 1u);
  StreamDecoder cut(*tokenizer);
  EXPECT_EQ(cut.push(emoji[0]), "");
  EXPECT_GT(cut.pending_bytes(), 0u);
  EXPECT_EQ(cut.finish(), "\xEF\xBF\xBD");
}

TEST(CharTokenizer, MatchesTokenizersAndTheFixtureJson) {
  nlohmann::json expected = read_json(kFixtures / "char" / "expected.json");
  std::string alphabet = from_hex(expected["alphabet_hex"]);
  CharTokenizer built(alphabet, expected["extra_tokens"].get<std::vector<std::string>>());
  EXPECT_EQ(built.to_json(), read_json(kFixtures / "char" / "tokenizer.json"));
  EXPECT_EQ(built.alphabet(), alphabet.substr(0, alphabet.size()));
  auto loaded = load_tokenizer(kFixtures / "char");
  EXPECT_EQ(loaded->kind(), "char");
  for (const Tokenizer* tokenizer : std::vector<const Tokenizer*>{&built, loaded.get()}) {
    EXPECT_EQ(*tokenizer->bos_id(), 1);
    EXPECT_EQ(*tokenizer->eos_id(), 2);
    EXPECT_EQ(*tokenizer->pad_id(), 0);
    for (const nlohmann::json& c : expected["cases"]) {
      std::string text = from_hex(c["text_hex"]);
      std::vector<int64_t> ids = tokenizer->encode(text);
      EXPECT_EQ(ids, c["ids"].get<std::vector<int64_t>>()) << text;
      EXPECT_EQ(tokenizer->encode(text, true), c["ids_with_special"].get<std::vector<int64_t>>());
      EXPECT_EQ(tokenizer->decode(ids), from_hex(c["decoded_hex"]));
      EXPECT_EQ(tokenizer->decode(ids, true), from_hex(c["decoded_skip_hex"]));
    }
  }
}

TEST(CharTokenizer, SaveThenLoadGivesSameIds) {
  CharTokenizer tokenizer("0123456789+=", {"<think>", "</think>"});
  EXPECT_EQ(tokenizer.vocab_size(), 4 + 2 + 12);
  const TempFolder dir;
  tokenizer.save_folder(dir.path());
  auto loaded = load_tokenizer(dir.path());
  EXPECT_EQ(loaded->kind(), "char");
  std::string text = "<think>12+3=15</think>x";
  EXPECT_EQ(loaded->encode(text, true), tokenizer.encode(text, true));
  EXPECT_EQ(tokenizer.encode("<think>1x"), (std::vector<int64_t>{4, 7, 3}));
  EXPECT_EQ(loaded->decode(loaded->encode("1+1=2")), "1+1=2");
  EXPECT_THROW(CharTokenizer("ab", {"<bos>"}), Error);
}

void expect_load_error(const nlohmann::json& json, const std::string& needle) {
  const TempFolder dir;
  const std::filesystem::path file = dir.write_file("tokenizer.json", json.dump());
  try {
    load_tokenizer(file);
    ADD_FAILURE() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_EQ(e.kind(), ErrorKind::kData);
  }
}

TEST(Tokenizer, MalformedFilesGiveErrorsNamingTheFile) {
  nlohmann::json good = read_json(kFixtures / "bpe512" / "tokenizer.json");
  nlohmann::json no_model = good;
  no_model.erase("model");
  expect_load_error(no_model, "missing \"model\"");
  nlohmann::json unigram = good;
  unigram["model"]["type"] = "Unigram";
  expect_load_error(unigram, "unsupported model type \"Unigram\"");
  nlohmann::json bad_merge = good;
  bad_merge["model"]["merges"][3] = {"Ġ", "not-a-token"};
  expect_load_error(bad_merge, "model.merges[3]");
  nlohmann::json bad_string_merge = good;
  bad_string_merge["model"]["merges"][0] = "abc";
  expect_load_error(bad_string_merge, "not two tokens");
  nlohmann::json bad_regex = good;
  bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_load_error(bad_regex, "regex");
  nlohmann::json bad_pre = good;
  bad_pre["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_load_error(bad_pre, "unsupported pre_tokenizer type \"Whitespace\"");

  const TempFolder dir;
  dir.write_file("tokenizer.json", "{\"model\": ");
  EXPECT_THROW(load_tokenizer(dir.path()), Error);
  EXPECT_THROW(load_tokenizer(dir / "missing"), Error);
}

TEST(Utf8, RepairReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_repair("a\x80z"), "a\xEF\xBF\xBDz");
  // E0 80: E0 needs A0..BF next, so each byte is its own subpart.
  EXPECT_EQ(utf8_repair("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // F0 9F 98 cut short is one subpart.
  EXPECT_EQ(utf8_repair("\xF0\x9F\x98!"), "\xEF\xBF\xBD!");
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(utf8_complete_prefix("ab\xE0\x80"), 4u);
}

}  // namespace
}  // namespace r1kit
