#include "policy/tokenizer_json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "common/error.h"
#include "policy/tokenizer_utf8.h"

namespace r1kit {
namespace {

// `value` as a token id: a float such as 1e300 has no int64_t value.
int64_t json_id(const nlohmann::json& value, const std::string& where) {
  if (!value.is_number_integer())
    throw_data_error(where + ": expected an integer id, got " + value.dump());
  return value.get<int64_t>();
}

bool json_bool(const nlohmann::json& json, const char* key, bool fallback) {
  auto it = json.find(key);
  return it == json.end() || it->is_null() ? fallback : it->get<bool>();
}

// Rust's char::is_alphanumeric, used for added tokens with single_word: ASCII
// by table, the rest through PCRE2's Unicode properties.
bool is_alphanumeric(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
  static pcre2_code* const kPattern = [] {
    int error = 0;
    PCRE2_SIZE offset = 0;
    auto pattern = reinterpret_cast<PCRE2_SPTR>(R"([\p{Alphabetic}\p{N}])");
    pcre2_code* code = pcre2_compile(pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &error,
                                     &offset, nullptr);
    if (code == nullptr) {
      code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(R"([\p{L}\p{N}])"), PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    }
    return code;
  }();
  std::string bytes;
  utf8_append(bytes, cp);
  pcre2_match_data* match = pcre2_match_data_create(1, nullptr);
  int rc = pcre2_match(kPattern, reinterpret_cast<PCRE2_SPTR>(bytes.data()), bytes.size(), 0,
                       PCRE2_ANCHORED, match, nullptr);
  pcre2_match_data_free(match);
  return rc > 0;
}

// The code point that ends `text` (valid UTF-8, not empty).
char32_t last_code_point(std::string_view text) {
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return utf8_next(text, start);
}

// Byte offset where the whitespace at the end of `text` begins.
size_t trailing_space_start(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!is_unicode_whitespace(utf8_next(text, pos))) break;
    end = start;
  }
  return end;
}

// Byte length of the whitespace that begins `text`.
size_t leading_space_length(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = pos;
    if (!is_unicode_whitespace(utf8_next(text, next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

bool is_unicode_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

const nlohmann::json& json_at(const nlohmann::json& json, const char* key,
                              const std::string& where) {
  if (!json.is_object()) throw_data_error(where + ": expected an object holding \"" + key + "\"");
  auto it = json.find(key);
  if (it == json.end()) throw_data_error(where + ": missing \"" + key + "\"");
  return *it;
}

nlohmann::json AddedToken::to_json() const {
  return {{"id", id},          {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
          {"special", special}};
}

AddedToken AddedToken::from_json(const nlohmann::json& json, const std::string& where) {
  AddedToken token;
  try {
    token.id = json_id(json_at(json, "id", where), where + ": id");
    token.content = json_at(json, "content", where).get<std::string>();
    token.special = json_bool(json, "special", false);
    token.single_word = json_bool(json, "single_word", false);
    token.lstrip = json_bool(json, "lstrip", false);
    token.rstrip = json_bool(json, "rstrip", false);
    token.normalized = json_bool(json, "normalized", !token.special);
  } catch (const nlohmann::json::exception& e) {
    throw_data_error(where + ": " + e.what());
  }
  if (token.content.empty())
    throw_data_error(where + ": added token " + std::to_string(token.id) + " is empty");
  return token;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (const AddedToken& token : tokens_) (token.normalized ? normalized_ : raw_).add(&token);
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  for (const AddedToken& token : tokens_) {
    if (token.content == content) return &token;
  }
  return nullptr;
}

const AddedToken* AddedVocabulary::find(int64_t id) const {
  for (const AddedToken& token : tokens_) {
    if (token.id == id) return &token;
  }
  return nullptr;
}

void AddedVocabulary::Matcher::add(const AddedToken* token) {
  auto& bucket = by_first_byte[static_cast<uint8_t>(token->content[0])];
  bucket.push_back(token);
  std::stable_sort(bucket.begin(), bucket.end(), [](const AddedToken* a, const AddedToken* b) {
    return a->content.size() > b->content.size();
  });
  empty = false;
}

// Port of `tokenizers`' AddedVocabulary::find_matches: leftmost-longest
// matches, then single_word / lstrip / rstrip adjust or drop each one.
void AddedVocabulary::Matcher::split(std::string_view text, std::vector<TextPiece>& out) const {
  if (empty) {
    if (!text.empty()) out.push_back({text, -1});
    return;
  }
  size_t emitted = 0;  // end of the last piece pushed
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* match = nullptr;
    for (const AddedToken* token : by_first_byte[static_cast<uint8_t>(text[pos])]) {
      if (text.compare(pos, token->content.size(), token->content) == 0) {
        match = token;
        break;
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + match->content.size();
    pos = stop;
    if (match->single_word) {
      bool space_before = start == 0 || !is_alphanumeric(last_code_point(text.substr(0, start)));
      size_t after = stop;
      bool space_after = stop == text.size() || !is_alphanumeric(utf8_next(text, after));
      if (!space_before || !space_after) continue;
    }
    if (match->lstrip) start = std::max(trailing_space_start(text.substr(0, start)), emitted);
    if (match->rstrip) stop += leading_space_length(text.substr(stop));
    if (emitted < start) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), match->id});
    emitted = stop;
    pos = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

void AddedVocabulary::split(std::string_view text,
                            const std::function<std::string(std::string_view)>* normalize,
                            std::deque<std::string>& arena, std::vector<TextPiece>& out) const {
  if (normalized_.empty) {
    // Common case: one pass, then normalize what is left.
    size_t first = out.size();
    raw_.split(text, out);
    if (normalize != nullptr) {
      for (size_t i = first; i < out.size(); ++i) {
        if (out[i].added_id < 0) out[i].text = arena.emplace_back((*normalize)(out[i].text));
      }
    }
    return;
  }
  std::vector<TextPiece> raw_pieces;
  raw_.split(text, raw_pieces);
  for (const TextPiece& piece : raw_pieces) {
    if (piece.added_id >= 0) {
      out.push_back(piece);
      continue;
    }
    std::string_view normalized = piece.text;
    if (normalize != nullptr) normalized = arena.emplace_back((*normalize)(piece.text));
    normalized_.split(normalized, out);
  }
}

PostProcessor PostProcessor::from_json(const nlohmann::json& json, const std::string& where) {
  PostProcessor processor;
  processor.json_ = json;
  if (json.is_null()) return processor;
  std::string type = json_at(json, "type", where).get<std::string>();
  try {
    if (type == "TemplateProcessing") {
      const nlohmann::json& special = json_at(json, "special_tokens", where);
      bool seen_sequence = false;
      for (const nlohmann::json& item : json_at(json, "single", where)) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        std::string name =
            json_at(json_at(item, "SpecialToken", where), "id", where).get<std::string>();
        if (!special.contains(name))
          throw_data_error(where + ": post_processor uses unknown special token " + name);
        const nlohmann::json& ids = json_at(special[name], "ids", where);
        if (!ids.is_array())
          throw_data_error(where + ": special token " + name + ": ids is not a list");
        auto& target = seen_sequence ? processor.suffix_ : processor.prefix_;
        for (const nlohmann::json& id : ids) target.push_back(json_id(id, where + ": " + name));
      }
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      processor.prefix_ = {json_id(json_at(json, "cls", where).at(1), where + ": cls")};
      processor.suffix_ = {json_id(json_at(json, "sep", where).at(1), where + ": sep")};
    } else if (type == "Sequence") {
      for (const nlohmann::json& step : json_at(json, "processors", where)) {
        PostProcessor inner = from_json(step, where);
        processor.prefix_.insert(processor.prefix_.begin(), inner.prefix_.begin(),
                                 inner.prefix_.end());
        processor.suffix_.insert(processor.suffix_.end(), inner.suffix_.begin(),
                                 inner.suffix_.end());
      }
    } else if (type != "ByteLevel") {
      throw_data_error(where + ": unsupported post_processor type \"" + type +
                       "\" (supported: TemplateProcessing, BertProcessing, RobertaProcessing, "
                       "ByteLevel, Sequence)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw_data_error(where + ": post_processor: " + e.what());
  }
  return processor;
}

void PostProcessor::apply(std::vector<int64_t>& ids) const {
  if (!prefix_.empty()) ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
  ids.insert(ids.end(), suffix_.begin(), suffix_.end());
}

std::optional<int64_t> PostProcessor::leading_id() const {
  if (prefix_.empty()) return std::nullopt;
  return prefix_.front();
}

}  // namespace r1kit
