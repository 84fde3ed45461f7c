#include "rewards/answer_extraction.h"

#include <cctype>

namespace r1kit {
namespace {

// The position of `needle` in `text` at or before `before`, ASCII case-insensitive.
size_t rfind_icase(std::string_view text, std::string_view needle,
                   size_t before = std::string_view::npos) {
  if (needle.size() > text.size()) return std::string_view::npos;
  size_t start = std::min(before, text.size() - needle.size());
  for (size_t i = start + 1; i-- > 0;) {
    bool match = true;
    for (size_t j = 0; j < needle.size() && match; ++j) {
      match = std::tolower(static_cast<unsigned char>(text[i + j])) == needle[j];
    }
    if (match) return i;
  }
  return std::string_view::npos;
}

// The end (one past the closing brace) of the group opening at text[open] == '{'.
std::optional<size_t> matching_brace(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {  // \{ and \} are literal braces
      ++i;
      continue;
    }
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return i + 1;
  }
  return std::nullopt;
}

struct Boxed {
  size_t start;
  std::string content;
};

std::optional<Boxed> find_last_boxed(std::string_view text) {
  size_t pos = text.size();
  while (pos > 0) {
    size_t boxed = text.rfind("\\boxed", pos - 1);
    size_t fbox = text.rfind("\\fbox", pos - 1);
    size_t at = boxed == std::string_view::npos  ? fbox
                : fbox == std::string_view::npos ? boxed
                                                 : std::max(boxed, fbox);
    if (at == std::string_view::npos) return std::nullopt;
    const size_t after_name = at + (at == boxed ? 6 : 5);
    size_t i = after_name;
    if (i < text.size() &&
        std::isalpha(static_cast<unsigned char>(text[i]))) {  // \boxedx: another command
      pos = at;
      continue;
    }
    while (i < text.size() && text[i] == ' ') ++i;
    if (i < text.size() && text[i] == '{') {
      if (std::optional<size_t> end = matching_brace(text, i)) {
        return Boxed{at, std::string(trim(text.substr(i + 1, *end - i - 2)))};
      }
    } else if (i > after_name) {  // "\boxed 5": one token after a space
      size_t end = i;
      while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
             text[end] != '$')
        ++end;
      if (end > i) return Boxed{at, std::string(text.substr(i, end - i))};
    }
    pos = at;
  }
  return std::nullopt;
}

// The rest of the line after `from`, without a sentence-ending period.
std::string rest_of_line(std::string_view text, size_t from) {
  size_t end = text.find('\n', from);
  std::string_view line =
      trim(text.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from));
  // "is 3.5. Next we..." ends at the first ". "; "is 3.5." loses its period.
  size_t stop = line.find(". ");
  if (stop != std::string_view::npos) line = line.substr(0, stop);
  while (!line.empty() && line.back() == '.') line.remove_suffix(1);
  return std::string(trim(line));
}

}  // namespace

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

std::optional<std::string> last_boxed(std::string_view text) {
  std::optional<Boxed> boxed = find_last_boxed(text);
  if (!boxed) return std::nullopt;
  return std::move(boxed->content);
}

std::optional<ExtractedAnswer> extract_final_answer(std::string_view completion,
                                                    const AnswerExtraction& how) {
  std::string_view text = completion;
  if (how.tail_chars > 0 && text.size() > how.tail_chars)
    text = text.substr(text.size() - how.tail_chars);

  std::optional<Boxed> boxed = how.boxed ? find_last_boxed(text) : std::nullopt;
  if (how.answer_tag) {
    size_t close = text.rfind("</answer>");
    size_t open = close == std::string_view::npos ? close : text.rfind("<answer>", close);
    if (open != std::string_view::npos && (!boxed || boxed->start < close)) {
      std::string_view inner = trim(text.substr(open + 8, close - open - 8));
      if (std::optional<Boxed> inside = find_last_boxed(inner))
        return ExtractedAnswer{inside->content, "answer_tag"};
      return ExtractedAnswer{std::string(inner), "answer_tag"};
    }
  }
  if (boxed) return ExtractedAnswer{std::move(boxed->content), "boxed"};
  if (how.hashes) {
    size_t at = text.rfind("####");
    if (at != std::string_view::npos) {
      std::string answer = rest_of_line(text, at + 4);
      if (!answer.empty()) return ExtractedAnswer{answer, "hashes"};
    }
  }
  if (how.answer_is) {
    size_t is_at = rfind_icase(text, "answer is");
    size_t colon_at = rfind_icase(text, "answer:");
    size_t at = is_at == std::string_view::npos      ? colon_at
                : colon_at == std::string_view::npos ? is_at
                                                     : std::max(is_at, colon_at);
    if (at != std::string_view::npos) {
      size_t from = at + (at == is_at ? 9 : 7);
      if (from < text.size() && text[from] == ':') ++from;
      std::string answer = rest_of_line(text, from);
      if (!answer.empty()) return ExtractedAnswer{answer, "answer_is"};
    }
  }
  return std::nullopt;
}

}  // namespace r1kit
