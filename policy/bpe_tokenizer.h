// Byte-level BPE as in GPT-2, Llama-3 and Qwen2, read from a Hugging Face
// tokenizer.json and byte-exact with the `tokenizers` library: added tokens,
// then the pre-tokenizer, then ranked merges per word (Sennrich et al., 2016;
// byte-level: Radford et al., 2019). Immutable after loading; encode/decode
// are safe from many threads (the word cache is sharded and locked).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/bpe_pretokenizer.h"
#include "policy/tokenizer.h"
#include "policy/tokenizer_json.h"

namespace r1kit {

// std::string keys looked up by std::string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

class BpeTokenizer : public Tokenizer {
 public:
  // Parses a tokenizer.json whose model is BPE; `source` names it in errors.
  static std::unique_ptr<BpeTokenizer> from_json(const nlohmann::json& json,
                                                 const std::string& source);

  std::vector<int64_t> encode(std::string_view text,
                              bool add_special_tokens = false) const override;
  std::string decode(const std::vector<int64_t>& ids,
                     bool skip_special_tokens = false) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_token_.size()); }
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  bool is_special(int64_t id) const override;
  std::string token_bytes(int64_t id) const override;
  void save(const std::filesystem::path& tokenizer_json) const override;
  std::string kind() const override { return "bpe"; }
  const PostProcessor& post_processor() const override { return post_processor_; }

  int64_t num_merges() const { return static_cast<int64_t>(merge_pairs_.size()); }
  // The first id the post-processor puts before the text (the usual <bos>).
  std::optional<int64_t> post_processor_leading_id() const { return post_processor_.leading_id(); }

 private:
  enum class Decoder { kByteLevel, kFuse, kJoinWithSpace };
  bool nfc_ = false;  // the NFC normalizer runs on text outside raw added tokens
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };

  // Bounded word -> ids memo, split in shards so threads rarely contend; a
  // full shard is cleared (cheap and keeps the memory bounded).
  class WordCache {
   public:
    bool get(std::string_view word, size_t hash, std::vector<int64_t>& out) const;
    void put(std::string_view word, size_t hash, const int64_t* ids, size_t count) const;

   private:
    static constexpr size_t kShards = 32;
    static constexpr size_t kShardCapacity = 4096;
    struct Shard {
      std::mutex mutex;
      StringMap<std::vector<int32_t>> words;
    };
    mutable std::array<Shard, kShards> shards_;
  };

  BpeTokenizer() = default;
  void parse_model(const nlohmann::json& model, const std::string& where);
  void encode_word(std::string_view word, std::vector<int64_t>& ids) const;
  // `tokenizers`' BPE::merge_word for a word in vocabulary space (unk, byte fallback, affixes).
  void word_symbols(std::string_view word, std::vector<int32_t>& symbols) const;
  // Applies the merges in rank order, leftmost first (`tokenizers`' Word::merge_all).
  void merge_all(std::vector<int32_t>& symbols) const;
  void check_id(int64_t id) const;

  std::vector<std::string> id_to_token_;  // "" for ids nothing uses
  std::vector<uint8_t> in_model_;         // 1 when the id is in model.vocab
  std::vector<uint8_t> special_;          // 1 for added tokens marked special
  std::vector<std::string> id_bytes_;     // token_bytes(id)
  StringMap<int32_t> model_vocab_;
  StringMap<int32_t> raw_vocab_;                // byte-level: raw bytes of a model token -> id
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  std::vector<std::pair<int32_t, int32_t>> merge_pairs_;  // in rank order, for save()
  std::array<int32_t, 256> byte_symbol_{};  // byte-level: id of each byte's symbol, -1 if absent

  AddedVocabulary added_;
  PreTokenizer pre_tokenizer_;
  PostProcessor post_processor_;
  Decoder decoder_ = Decoder::kJoinWithSpace;
  bool byte_level_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  int32_t unk_id_ = -1;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  nlohmann::json document_;  // tokenizer.json without model.vocab/merges, for save()
  WordCache cache_;
};

}  // namespace r1kit
