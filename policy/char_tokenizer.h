// A character tokenizer for toy tasks (arithmetic, copying): one id per
// character of a fixed alphabet, plus <pad> <bos> <eos> <unk> and extra single
// tokens such as <think>. Saved as a Hugging Face tokenizer.json (a BPE model
// without merges, Fuse decoder) that `tokenizers` loads with the same ids.
// Immutable after construction; safe from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/tokenizer.h"
#include "policy/tokenizer_json.h"

namespace r1kit {

class CharTokenizer : public Tokenizer {
 public:
  // Ids: <pad>=0 <bos>=1 <eos>=2 <unk>=3, then `extra_tokens` (special, each
  // matched whole), then each distinct character of `alphabet` (UTF-8) in
  // order. Characters outside the alphabet encode as <unk>. add_special_tokens
  // puts <bos> in front. Throws a config error for invalid UTF-8 or an empty
  // or duplicate extra token.
  explicit CharTokenizer(std::string_view alphabet,
                         const std::vector<std::string>& extra_tokens = {});

  // Reads a tokenizer.json in the form save() writes; `source` names it in errors.
  static std::unique_ptr<CharTokenizer> from_json(const nlohmann::json& json,
                                                  const std::string& source);
  // True when `json` has that form: a BPE model without merges or
  // pre-tokenizer whose non-added tokens are single characters.
  static bool is_char_tokenizer_json(const nlohmann::json& json);

  std::vector<int64_t> encode(std::string_view text,
                              bool add_special_tokens = false) const override;
  std::string decode(const std::vector<int64_t>& ids,
                     bool skip_special_tokens = false) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_token_.size()); }
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  bool is_special(int64_t id) const override;
  std::string token_bytes(int64_t id) const override { return id_to_token(id); }
  void save(const std::filesystem::path& tokenizer_json) const override;
  std::string kind() const override { return "char"; }
  const PostProcessor& post_processor() const override { return post_processor_; }

  // The tokenizer.json document save() writes.
  nlohmann::json to_json() const;
  // The characters of the vocabulary, in id order (UTF-8).
  std::string alphabet() const;

 private:
  CharTokenizer() = default;
  void index();

  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> special_;
  std::vector<uint8_t> added_flag_;  // 1 for added tokens (not characters)
  std::unordered_map<char32_t, int32_t> char_ids_;
  std::unordered_map<std::string, int32_t> token_ids_;
  AddedVocabulary added_;
  PostProcessor post_processor_;
  int32_t unk_id_ = -1;
  std::string unk_token_;
};

}  // namespace r1kit
