// Corpus preparation: cleaning, exact de-duplication, the drop reasons of the
// manifest with file:line examples, and the shard/index round trip.
#include "data/prepare.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "data/text_cleaning.h"
#include "data/token_shards.h"
#include "tests/data/data_test_util.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::bpe512;
using testing::bpe512_folder;
using testing::TempFolder;

TEST(TextCleaning, NormalisesRemovesControlsAndTrims) {
  EXPECT_EQ(clean_text("  Cafe\xCC\x81\r\nnext\x01line\tend \x7F\n\n"),
            "Caf\xC3\xA9\nnextline\tend");
  EXPECT_EQ(clean_text("a\rb"), "a\nb");
  EXPECT_EQ(clean_text("C1\xC2\x85here"), "C1here");                // U+0085 is a C1 control
  EXPECT_EQ(clean_text("bad \xFF byte"), "bad \xEF\xBF\xBD byte");  // repaired to U+FFFD
  EXPECT_EQ(clean_text("Cafe\xCC\x81", /*normalize=*/false), "Cafe\xCC\x81");
  EXPECT_EQ(utf8_length("Caf\xC3\xA9"), 4);
}

TEST(TextCleaning, ContentHashSeparatesTextsAndIsStable) {
  EXPECT_EQ(content_hash("same text"), content_hash(std::string("same ") + "text"));
  EXPECT_FALSE(content_hash("same text") == content_hash("same text."));
  EXPECT_FALSE(content_hash("") == content_hash(std::string(1, '\0')));
}

// The corpus of the prepare tests, with each document's fate in a comment,
// written to temp/corpus; returns that folder.
fs::path write_corpus(const TempFolder& temp) {
  temp.write_file("corpus/a.txt",
                  "Hello world.\nSecond line of doc one.\n"  // line 1: kept
                  "\n"
                  "  Hello world.\nSecond line of doc one.\n"  // line 4: duplicate after trimming
                  "\n\n"
                  "Cafe\xCC\x81 au lait\n"  // line 8: kept (NFC)
                  "\n"
                  "Caf\xC3\xA9 au lait\n"  // line 10: duplicate of line 8 after NFC
                  "\n"
                  "xy\n"  // line 12: too_short
                  "\n"
                  "\x01\x02\n");  // line 14: empty after cleaning
  temp.write_file("corpus/b.jsonl",
                  "{\"text\": \"A json document.\"}\n"  // line 1: kept
                  "{oops\n"                             // line 2: invalid_json
                  "\n"
                  "{\"body\": \"no text\"}\n"           // line 4: invalid_json (no text key)
                  "{\"text\": \"A json document.\"}\n"  // line 5: duplicate
                  "{\"text\": \"" +
                      std::string(150, 'z') + "\"}\n");  // line 6: too_long
  return temp / "corpus";
}

DataPrepareConfig corpus_config(const fs::path& inputs, const fs::path& output) {
  DataPrepareConfig config;
  config.inputs = {(inputs / "a.txt").string(), (inputs / "b.jsonl").string()};
  config.output_dir = output.string();
  config.tokenizer = bpe512_folder().string();
  config.min_chars = 3;
  config.max_chars = 100;
  config.num_threads = 2;
  return config;
}

// The documents of a prepared folder as text, eos separators removed.
std::vector<std::string> read_documents(const fs::path& folder) {
  auto shards = ShardSet::open(folder);
  std::vector<std::string> documents;
  for (size_t s = 0; s < shards->num_shards(); ++s) {
    std::vector<int64_t> offsets = shards->document_offsets(s);
    for (size_t d = 0; d + 1 < offsets.size(); ++d) {
      std::vector<int64_t> ids(offsets[d + 1] - offsets[d]);
      shards->read(s, offsets[d], static_cast<int64_t>(ids.size()), ids.data());
      EXPECT_EQ(ids.back(), shards->eos_id());
      ids.pop_back();
      documents.push_back(bpe512()->decode(ids));
    }
  }
  return documents;
}

TEST(DataPrepare, DeduplicatesAndReportsDroppedLinesWithReasons) {
  const TempFolder temp;
  fs::path inputs = write_corpus(temp);
  fs::path output = temp.make_folder("shards");
  DataPrepareReport report = prepare_corpus(corpus_config(inputs, output), "test");

  EXPECT_EQ(report.documents_read, 11);
  EXPECT_EQ(report.documents_kept, 3);
  EXPECT_EQ(report.dropped.at("duplicate"), 3);
  EXPECT_EQ(report.dropped.at("invalid_json"), 2);
  EXPECT_EQ(report.dropped.at("too_short"), 1);
  EXPECT_EQ(report.dropped.at("too_long"), 1);
  EXPECT_EQ(report.dropped.at("empty"), 1);
  std::string a = (inputs / "a.txt").string(), b = (inputs / "b.jsonl").string();
  EXPECT_EQ(report.examples.at("duplicate"),
            (std::vector<std::string>{a + ":4", a + ":10", b + ":5"}));
  EXPECT_EQ(report.examples.at("invalid_json"),
            (std::vector<std::string>{b + ":2: not valid JSON", b + ":4: no \"text\" key"}));
  EXPECT_EQ(report.examples.at("too_short"), std::vector<std::string>{a + ":12"});
  EXPECT_EQ(report.examples.at("too_long"), std::vector<std::string>{b + ":6"});
  EXPECT_EQ(report.examples.at("empty"), std::vector<std::string>{a + ":14"});

  nlohmann::json manifest = read_json_file((output / "manifest.json").string());
  EXPECT_EQ(manifest["documents_read"], 11);
  EXPECT_EQ(manifest["documents_kept"], 3);
  EXPECT_EQ(manifest["dropped"]["duplicate"], 3);
  EXPECT_EQ(manifest["dropped_examples"]["invalid_json"][0], b + ":2: not valid JSON");
  EXPECT_EQ(manifest["dtype"], "uint16");
  EXPECT_EQ(manifest["shards"][0]["tokens"], report.tokens);
  EXPECT_EQ(read_documents(output),
            (std::vector<std::string>{"Hello world.\nSecond line of doc one.",
                                      "Caf\xC3\xA9 au lait", "A json document."}));
}

TEST(DataPrepare, OutputIsTheSameForAnyThreadCountAndShardSize) {
  const TempFolder temp;
  fs::path inputs = write_corpus(temp);
  DataPrepareConfig one = corpus_config(inputs, temp.make_folder("one"));
  one.num_threads = 1;
  DataPrepareConfig split = corpus_config(inputs, temp.make_folder("split"));
  split.max_shard_tokens = 8;  // every document gets its own shard
  DataPrepareReport one_report = prepare_corpus(one, "test");
  DataPrepareReport split_report = prepare_corpus(split, "test");
  EXPECT_EQ(one_report.shards.size(), 1u);
  EXPECT_EQ(split_report.shards.size(), 3u);
  EXPECT_EQ(one_report.tokens, split_report.tokens);
  EXPECT_EQ(read_documents(one.output_dir), read_documents(split.output_dir));
}

TEST(DataPrepare, LineSplitAndNoDeduplication) {
  const TempFolder temp;
  const fs::path& inputs = temp.path();
  temp.write_file("c.txt", "one line\n\none line\nanother line\n");
  DataPrepareConfig config;
  config.inputs = {inputs.string()};  // a folder: its files
  config.output_dir = (inputs / "out").string();
  config.tokenizer = bpe512_folder().string();
  config.text_split = "line";
  config.deduplicate = false;
  DataPrepareReport report = prepare_corpus(config, "test");
  EXPECT_EQ(report.documents_read, 3);
  EXPECT_EQ(report.documents_kept, 3);
  EXPECT_EQ(read_documents(config.output_dir),
            (std::vector<std::string>{"one line", "one line", "another line"}));
}

TEST(DataPrepare, BadOptionsNameTheSource) {
  const TempFolder temp;
  fs::path inputs = write_corpus(temp);
  DataPrepareConfig config = corpus_config(inputs, temp.make_folder("out"));
  config.inputs.push_back((inputs / "missing.txt").string());
  try {
    prepare_corpus(config, "prepare.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prepare.json: inputs:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      read_config<DataPrepareConfig>({{"inputs", {"x"}}, {"output_dir", "o"}}, "prepare.json"),
      Error);
}

TEST(TokenShards, RoundTripOfWideTokensAndIndex) {
  const TempFolder temp;
  const fs::path& folder = temp.path();
  ShardWriter writer(folder, /*vocab_size=*/70000, /*max_shard_tokens=*/5);
  EXPECT_EQ(writer.dtype(), "uint32");
  writer.add_document({69999, 1, 2});
  writer.add_document({65536, 0});             // 3 + 2 = 5 tokens: still the first shard
  writer.add_document({7, 8, 9, 10, 11, 12});  // longer than a shard: a shard of its own
  std::vector<ShardInfo> shards = writer.finish();
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards[0].tokens, 5);
  EXPECT_EQ(shards[0].documents, 2);
  temp.write_file("manifest.json", shard_manifest(writer.dtype(), 70000, 0, shards).dump());

  auto set = ShardSet::open(folder);
  EXPECT_EQ(set->total_tokens(), 11);
  EXPECT_EQ(set->token(0, 0), 69999);
  EXPECT_EQ(set->token(0, 3), 65536);
  EXPECT_EQ(set->token(1, 5), 12);
  EXPECT_EQ(set->document_offsets(0), (std::vector<int64_t>{0, 3, 5}));
  EXPECT_EQ(set->document_offsets(1), (std::vector<int64_t>{0, 6}));

  // A truncated shard file is caught when the folder is opened.
  fs::resize_file(folder / shards[1].file, 8);
  EXPECT_THROW(ShardSet::open(folder), Error);
}

}  // namespace
}  // namespace r1kit
