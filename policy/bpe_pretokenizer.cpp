#include "policy/bpe_pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <c10/util/Exception.h>
#include <pcre2.h>

#include <array>

#include "common/error.h"
#include "policy/tokenizer_json.h"

namespace r1kit {
namespace {

// GPT-2's pattern, used by ByteLevel with use_regex=true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Oniguruma (which `tokenizers` uses) counts U+0085 as \s; PCRE2 with UCP does
// not, so \s and \S are widened to agree.
std::string onig_to_pcre2(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? R"(\s\x{85})" : R"([\s\x{85}])";
      } else if (e == 'S' && !in_class) {
        out += R"([^\s\x{85}])";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

// Per-thread JIT stack: the default 32 KiB is too small for long whitespace
// runs under \s+(?!\S); a JIT stack may not be shared between threads.
struct JitContext {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  JitContext() {
    stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (stack != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~JitContext() {
    pcre2_match_context_free(context);
    if (stack != nullptr) pcre2_jit_stack_free(stack);
  }
};

struct MatchData {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  ~MatchData() { pcre2_match_data_free(data); }
};

size_t utf8_length_at(std::string_view text, size_t pos) {
  auto b = static_cast<uint8_t>(text[pos]);
  return b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
}

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  throw_data_error(where + ": unknown Split behavior \"" + name +
                   "\" (known: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

struct Span {
  size_t start;
  size_t end;
  bool is_match;
};

// `tokenizers`' NormalizedString::split: turns match spans into the kept pieces.
void apply_behavior(SplitBehavior behavior, std::vector<Span>& spans) {
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      return;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) out.push_back(s);
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().start = it->start;
        } else {
          out.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case SplitBehavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      break;
  }
  spans = std::move(out);
}

}  // namespace

PcreRegex::PcreRegex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  std::string translated = onig_to_pcre2(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                        PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code_ == nullptr) {
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(error, message.data(), message.size());
    throw_data_error(where + ": bad pre-tokenizer regex at offset " + std::to_string(offset) +
                     ": " + reinterpret_cast<const char*>(message.data()) + " in " + pattern);
  }
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

PcreRegex::~PcreRegex() { pcre2_code_free(code_); }

void PcreRegex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  thread_local JitContext jit;
  thread_local MatchData match;
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), offset, 0, match.data, jit.context)
                  : PCRE2_ERROR_JIT_BADOPTION;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION) {
      rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       match.data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    TORCH_CHECK(rc > 0, "PCRE2 match failed with code ", rc, " for pattern ", pattern_);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    size_t start = ovector[0];
    size_t end = ovector[1];
    out.emplace_back(start, end);
    if (end > start) {
      offset = end;
    } else {
      if (end >= text.size()) break;
      offset = end + utf8_length_at(text, end);
    }
  }
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& json, const std::string& where) {
  PreTokenizer pre;
  if (!json.is_null()) pre.add_steps(json, where);
  return pre;
}

void PreTokenizer::add_steps(const nlohmann::json& json, const std::string& where) {
  std::string type = json_at(json, "type", where).get<std::string>();
  if (byte_level_) {
    throw_data_error(where + ": pre_tokenizer " + type +
                     " after ByteLevel is not supported (ByteLevel must come last)");
  }
  auto flag = [&](const char* key, bool fallback) {
    auto it = json.find(key);
    return it == json.end() || it->is_null() ? fallback : it->get<bool>();
  };
  Step step;
  if (type == "Sequence") {
    for (const nlohmann::json& inner : json_at(json, "pretokenizers", where))
      add_steps(inner, where);
    return;
  } else if (type == "Split") {
    const nlohmann::json& pattern = json_at(json, "pattern", where);
    if (pattern.contains("Regex")) {
      step.regex = std::make_shared<PcreRegex>(pattern["Regex"].get<std::string>(), where);
    } else if (pattern.contains("String")) {
      step.literal = pattern["String"].get<std::string>();
      if (step.literal.empty()) throw_data_error(where + ": Split with an empty String pattern");
    } else {
      throw_data_error(where + ": Split pattern needs \"Regex\" or \"String\", got " +
                       pattern.dump());
    }
    step.behavior = parse_behavior(json_at(json, "behavior", where).get<std::string>(), where);
    step.invert = flag("invert", false);
  } else if (type == "Digits") {
    // `tokenizers` splits on char::is_numeric: each one alone, or runs of them.
    bool individual = flag("individual_digits", false);
    step.regex = std::make_shared<PcreRegex>(individual ? R"(\p{N})" : R"(\p{N}+)", where);
  } else if (type == "ByteLevel") {
    step.is_byte_level = true;
    step.add_prefix_space = flag("add_prefix_space", true);
    if (flag("use_regex", true)) step.regex = std::make_shared<PcreRegex>(kGpt2Pattern, where);
    byte_level_ = true;
  } else {
    throw_data_error(where + ": unsupported pre_tokenizer type \"" + type +
                     "\" (supported: ByteLevel, Split, Digits, Sequence)");
  }
  steps_.push_back(std::move(step));
}

void PreTokenizer::split(std::string_view text, std::deque<std::string>& arena,
                         std::vector<std::string_view>& out) const {
  std::vector<std::string_view> words{text};
  std::vector<std::string_view> next;
  std::vector<std::pair<size_t, size_t>> matches;
  std::vector<Span> spans;
  for (const Step& step : steps_) {
    next.clear();
    for (std::string_view word : words) {
      if (step.is_byte_level && step.add_prefix_space && (word.empty() || word[0] != ' ')) {
        std::string& spaced = arena.emplace_back(" ");
        spaced.append(word);
        word = spaced;
      }
      if (step.is_byte_level && !step.regex) {
        next.push_back(word);
        continue;
      }
      matches.clear();
      if (step.regex) {
        step.regex->find_all(word, matches);
      } else {
        for (size_t pos = word.find(step.literal); pos != std::string_view::npos;
             pos = word.find(step.literal, pos + step.literal.size())) {
          matches.emplace_back(pos, pos + step.literal.size());
        }
      }
      spans.clear();
      size_t previous = 0;
      for (auto [start, end] : matches) {
        if (previous != start) spans.push_back({previous, start, step.invert});
        spans.push_back({start, end, !step.invert});
        previous = end;
      }
      if (previous != word.size()) spans.push_back({previous, word.size(), step.invert});
      apply_behavior(step.behavior, spans);
      for (const Span& s : spans) {
        if (s.end > s.start) next.push_back(word.substr(s.start, s.end - s.start));
      }
    }
    words.swap(next);
  }
  for (std::string_view word : words) {
    if (!word.empty()) out.push_back(word);
  }
}

const std::vector<char32_t>& byte_to_unicode() {
  static const std::vector<char32_t> kTable = [] {
    std::vector<char32_t> table(256);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      table[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return table;
  }();
  return kTable;
}

int unicode_to_byte(char32_t code_point) {
  static const std::vector<int> kInverse = [] {
    std::vector<int> inverse(324, -1);
    const auto& table = byte_to_unicode();
    for (int b = 0; b < 256; ++b) inverse[table[b]] = b;
    return inverse;
  }();
  return code_point < kInverse.size() ? kInverse[code_point] : -1;
}

}  // namespace r1kit
