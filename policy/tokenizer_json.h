// The parts of a Hugging Face tokenizer.json that every r1kit tokenizer kind
// shares: added tokens (matched in text before the model runs, leftmost-longest
// like `tokenizers`' AddedVocabulary) and the post-processor that adds special
// tokens. Immutable after construction, so safe from many threads.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit {

// One entry of tokenizer.json's "added_tokens".
struct AddedToken {
  int64_t id = 0;
  std::string content;
  bool single_word = false;  // match only when not inside a word
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // the match swallows whitespace on its right
  bool normalized = false;   // matched in normalized text rather than raw text
  bool special = true;       // skipped by decode(skip_special_tokens=true)

  nlohmann::json to_json() const;
  // `where` names the file and entry in errors.
  static AddedToken from_json(const nlohmann::json& json, const std::string& where);
};

// A run of text after splitting on added tokens: plain text (`added_id` < 0)
// or one added token.
struct TextPiece {
  std::string_view text;
  int64_t added_id = -1;
};

// Splits text on added tokens the way `tokenizers` does: first the tokens with
// normalized=false on the raw text, then, inside what is left and after the
// normalizer ran, the tokens with normalized=true.
class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  explicit AddedVocabulary(std::vector<AddedToken> tokens);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(std::string_view content) const;
  const AddedToken* find(int64_t id) const;

  // Appends the pieces of `text` to `out`. `normalize` maps a plain piece to
  // its normalized text (nullptr = identity); normalized strings are kept
  // alive in `arena` while the pieces are used.
  void split(std::string_view text, const std::function<std::string(std::string_view)>* normalize,
             std::deque<std::string>& arena, std::vector<TextPiece>& out) const;

 private:
  // Added tokens bucketed by first byte, longest first (leftmost-longest).
  struct Matcher {
    std::vector<std::vector<const AddedToken*>> by_first_byte =
        std::vector<std::vector<const AddedToken*>>(256);
    bool empty = true;
    void add(const AddedToken* token);
    void split(std::string_view text, std::vector<TextPiece>& out) const;
  };

  std::vector<AddedToken> tokens_;
  Matcher raw_;         // normalized == false
  Matcher normalized_;  // normalized == true
};

// tokenizer.json's "post_processor" reduced to what encode(add_special_tokens)
// needs: ids put before and after a single sequence. Supports
// TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel and a
// Sequence of those; the original JSON is kept for save().
class PostProcessor {
 public:
  PostProcessor() = default;
  // `json` may be null (no post-processor); `where` names the file in errors.
  static PostProcessor from_json(const nlohmann::json& json, const std::string& where);

  void apply(std::vector<int64_t>& ids) const;
  const nlohmann::json& json() const { return json_; }
  // The ids put before and after a single sequence ({<|begin_of_text|>} and {}
  // for Llama-3; both empty for Qwen2's ByteLevel post-processor).
  const std::vector<int64_t>& prefix() const { return prefix_; }
  const std::vector<int64_t>& suffix() const { return suffix_; }
  // The first id it puts before the text, the usual beginning-of-sequence token.
  std::optional<int64_t> leading_id() const;

 private:
  std::vector<int64_t> prefix_;
  std::vector<int64_t> suffix_;
  nlohmann::json json_;
};

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_unicode_whitespace(char32_t code_point);

// json[key], or a data error "<where>: missing \"key\"".
const nlohmann::json& json_at(const nlohmann::json& json, const char* key,
                              const std::string& where);

}  // namespace r1kit
