// Text <-> token ids for the policy: the Tokenizer interface, the factory that
// reads a Hugging Face tokenizer.json (+ tokenizer_config.json) and picks the
// kind (byte-level BPE or character), and StreamDecoder for incremental text.
// Tokenizers are immutable after loading: every method is const and safe to
// call from many threads at once. load_tokenizer returns an owned object.
//
//   auto tokenizer = load_tokenizer("tests/fixtures/tiny-qwen2");
//   std::vector<int64_t> ids = tokenizer->encode("What is 2+2?");
//   std::string text = tokenizer->decode(ids);
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer_json.h"

namespace r1kit {

// The special tokens a model knows by role, from tokenizer_config.json (or
// the kind's defaults). A token string empty = the role has no token.
struct SpecialTokens {
  std::string bos;
  std::string eos;
  std::string pad;
  std::string unk;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text to ids. Invalid UTF-8 is first repaired (one U+FFFD per maximal
  // invalid subpart), which is what `tokenizers` receives from Python's
  // bytes.decode(errors="replace"). add_special_tokens applies the
  // post-processor (e.g. a leading <bos>).
  virtual std::vector<int64_t> encode(std::string_view text,
                                      bool add_special_tokens = false) const = 0;
  // Ids to text, byte-exact with `tokenizers`; bytes that do not form UTF-8
  // become U+FFFD. Throws a data error on an id outside the vocabulary.
  virtual std::string decode(const std::vector<int64_t>& ids,
                             bool skip_special_tokens = false) const = 0;
  // One past the largest id (model vocabulary plus added tokens).
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> token_to_id(std::string_view token) const = 0;
  // The token string as stored in tokenizer.json ("Ġthe"); throws on a bad id.
  virtual std::string id_to_token(int64_t id) const = 0;
  // True for added tokens marked special (skipped by skip_special_tokens).
  virtual bool is_special(int64_t id) const = 0;
  // The bytes `id` contributes to decode() before UTF-8 repair; decode(ids)
  // is utf8_repair of their concatenation (what StreamDecoder relies on).
  virtual std::string token_bytes(int64_t id) const = 0;
  // Writes tokenizer.json, loadable by `tokenizers` and by load_tokenizer.
  virtual void save(const std::filesystem::path& tokenizer_json) const = 0;
  // "bpe" or "char".
  virtual std::string kind() const = 0;
  // tokenizer.json's post_processor: what add_special_tokens puts around a text.
  virtual const PostProcessor& post_processor() const = 0;

  // Writes tokenizer.json and tokenizer_config.json (roles, chat template)
  // into `folder`, which must exist.
  void save_folder(const std::filesystem::path& folder) const;

  const SpecialTokens& special_tokens() const { return special_tokens_; }
  std::optional<int64_t> bos_id() const { return bos_id_; }
  std::optional<int64_t> eos_id() const { return eos_id_; }
  std::optional<int64_t> pad_id() const { return pad_id_; }
  std::optional<int64_t> unk_id() const { return unk_id_; }
  // Jinja chat template from tokenizer_config.json; "" when none.
  const std::string& chat_template() const { return chat_template_; }
  // tokenizer_config.json as read (null when there was none).
  const nlohmann::json& config_json() const { return config_json_; }

  // Sets the roles; each non-empty token must exist, else a data error
  // naming `source`. Called by the loaders; not thread-safe.
  void set_special_tokens(const SpecialTokens& tokens, const std::string& source);
  // Reads bos/eos/pad/unk and chat_template from a parsed tokenizer_config.json.
  void apply_config(const nlohmann::json& config, const std::string& source);

 protected:
  Tokenizer() = default;

 private:
  SpecialTokens special_tokens_;
  std::optional<int64_t> bos_id_, eos_id_, pad_id_, unk_id_;
  std::string chat_template_;
  nlohmann::json config_json_;
};

// Loads `folder_or_file` (a folder holding tokenizer.json, or the file
// itself) and tokenizer_config.json beside it when present. A BPE model whose
// vocabulary is single characters without merges loads as CharTokenizer,
// other BPE models as BpeTokenizer. Throws a data error naming the file for
// a malformed or unsupported tokenizer.json, an I/O error when it is missing.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& folder_or_file);

// Parses a tokenizer.json document; `source` names it in errors.
std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& json,
                                               const std::string& source);

// Turns generated ids into text as they arrive: each push() returns only the
// text that became complete, holding back bytes of a UTF-8 character that is
// still cut short, so stop strings and terminal output see whole characters.
// The concatenation of all pushes and finish() equals tokenizer.decode(ids).
// An id the tokenizer cannot decode (a padded model vocabulary) is left out of
// the text with a warning (once per decoder), as `tokenizers`' decode leaves
// out ids it does not know, where decode() throws.
// One per sequence; not thread-safe; the tokenizer must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  // Appends `id`; returns the newly completed text (possibly empty).
  std::string push(int64_t id);
  // Appends several ids; returns the newly completed text.
  std::string push(const std::vector<int64_t>& ids);
  // Returns the held-back bytes (repaired to U+FFFD) and clears them.
  std::string finish();
  // Bytes currently held back (0-3).
  size_t pending_bytes() const { return pending_.size(); }
  // Ids pushed so far that the tokenizer could not decode (left out of the text).
  int64_t undecodable_ids() const { return undecodable_ids_; }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
  int64_t undecodable_ids_ = 0;
};

}  // namespace r1kit
