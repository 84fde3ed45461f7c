// `r1kit data prepare`: text or JSONL corpora in, token shards out (see
// token_shards.h), with a manifest.json that counts what was read, kept and
// dropped and why. Documents are cleaned (text_cleaning.h), de-duplicated by
// exact content hash (the first occurrence wins), tokenised in parallel on a
// ThreadPool and written in input order, so the output is the same for any
// thread count. One call at a time per output folder.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/config.h"
#include "data/token_shards.h"

namespace r1kit {

struct DataPrepareConfig {
  std::vector<std::string> inputs;  // files, or folders (their regular files, sorted); required
  std::string output_dir;       // the shards folder (created; old shards in it replaced); required
  std::string tokenizer;        // folder holding tokenizer.json, or the file; required
  std::string format = "auto";  // auto (.jsonl/.json files = jsonl, others text), text or jsonl
  std::string text_split =
      "blank_line";  // text files: blank_line = a document per block between empty lines,
                     // line = one per non-empty line, file = the whole file
  std::string text_field = "text";  // jsonl: the key whose string is the document
  int64_t min_chars = 1;    // shorter documents (code points, after cleaning) drop as too_short
  int64_t max_chars = 0;    // longer documents drop as too_long; 0 = no limit
  bool normalize = true;    // Unicode NFC (ICU) while cleaning
  bool deduplicate = true;  // drop exact repeats of a cleaned document
  // Put the tokenizer's post-processor tokens around each document, before its
  // eos (a Llama-3 <|begin_of_text|> in front), as transformers' tokenizer(text)
  // does by default (HF add_special_tokens); false = the text's ids and eos only.
  bool add_special_tokens = true;
  int64_t max_shard_tokens = 100'000'000;  // tokens per shard file (documents are never split)
  int64_t num_threads = 0;                 // tokenisation threads; 0 = hardware threads
  int64_t max_examples = 5;  // file:line examples kept per drop reason in the manifest

  void visit(ConfigVisitor& v);
};

// The reasons a document is dropped, as named in the manifest.
inline const std::vector<std::string>& drop_reasons() {
  static const std::vector<std::string> reasons = {"empty", "too_short", "too_long", "duplicate",
                                                   "invalid_json"};
  return reasons;
}

struct DataPrepareReport {
  int64_t documents_read = 0;  // documents seen (a malformed JSONL line counts as one)
  int64_t documents_kept = 0;
  int64_t tokens = 0;                      // tokens written, eos separators included
  std::map<std::string, int64_t> dropped;  // reason -> count (every reason present)
  std::map<std::string, std::vector<std::string>>
      examples;  // reason -> "file:line[: why]" (at most max_examples)
  std::vector<ShardInfo> shards;
  nlohmann::json manifest;  // what was written to <output_dir>/manifest.json
};

// Runs the preparation; shows a ProgressBar on stderr. Throws Error(kConfig)
// naming `source` for bad options, Error(kIo) for unreadable inputs; malformed
// data lines never throw, they are counted as invalid_json.
DataPrepareReport prepare_corpus(const DataPrepareConfig& config, const std::string& source);

}  // namespace r1kit
