// The text side of a BPE tokenizer.json: the pre-tokenizer that cuts text into
// words before BPE (Split with a regex or a literal, ByteLevel with GPT-2's
// regex and prefix space, Digits, and a Sequence of them), with regexes run by
// PCRE2 (UTF + UCP, JIT-compiled when available). Immutable after loading;
// split() is safe from many threads (PCRE2 match state is per call/thread).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace r1kit {

// A compiled regex with the Oniguruma dialect of `tokenizers` mapped to PCRE2
// (Oniguruma's \s also matches U+0085). Compiled once; matching is const.
class PcreRegex {
 public:
  // `where` names the file in the error for a pattern PCRE2 rejects.
  PcreRegex(const std::string& pattern, const std::string& where);
  ~PcreRegex();
  PcreRegex(const PcreRegex&) = delete;
  PcreRegex& operator=(const PcreRegex&) = delete;

  // Appends the [start, end) byte ranges of all non-overlapping matches in
  // `text`, which must be valid UTF-8.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

// What a Split keeps of the text around its matches (`tokenizers`' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  PreTokenizer() = default;
  // `json` is tokenizer.json's "pre_tokenizer" (null = the whole text is one word).
  static PreTokenizer from_json(const nlohmann::json& json, const std::string& where);

  // Appends the words of `text` (valid UTF-8) to `out`: views into `text` or
  // into strings kept in `arena` (a word given a prefix space).
  void split(std::string_view text, std::deque<std::string>& arena,
             std::vector<std::string_view>& out) const;
  // True when a ByteLevel step maps each byte of a word to one symbol.
  bool byte_level() const { return byte_level_; }

 private:
  struct Step {
    bool is_byte_level = false;
    std::shared_ptr<const PcreRegex> regex;  // Split(Regex) / Digits / ByteLevel use_regex
    std::string literal;                     // Split(String)
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;
  };
  void add_steps(const nlohmann::json& json, const std::string& where);

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

// GPT-2's byte <-> unicode table: every byte gets a printable code point so
// BPE vocabularies are strings (bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF map to
// themselves, the rest to U+0100 upward). Radford et al., 2019 (GPT-2).
const std::vector<char32_t>& byte_to_unicode();
// The byte of a code point from that table, or -1 when it is not one.
int unicode_to_byte(char32_t code_point);

}  // namespace r1kit
