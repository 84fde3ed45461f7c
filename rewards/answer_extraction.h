// Finding the final answer in a completion: the last well-formed \boxed{...}
// (braces matched), an R1 <answer>...</answer> block, a GSM8K "#### x" line,
// or "the answer is x". Only the tail of long text is searched. Pure functions
// on strings; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace r1kit {

struct AnswerExtraction {
  bool boxed = true;         // the last \boxed{...} / \fbox{...}
  bool answer_tag = true;    // the last <answer>...</answer>; wins unless a \boxed comes after it
  bool hashes = true;        // GSM8K's "#### 42" line
  bool answer_is = true;     // "The answer is 42." / "Final answer: 42"
  size_t tail_chars = 4096;  // only the last this-many characters are searched; 0 = all
};

struct ExtractedAnswer {
  std::string text;    // the answer, trimmed, boxes removed
  std::string method;  // "boxed", "answer_tag", "hashes" or "answer_is"
};

// The final answer, or nullopt when none of the enabled forms is present.
std::optional<ExtractedAnswer> extract_final_answer(std::string_view completion,
                                                    const AnswerExtraction& how = {});

// The content of the last \boxed{...} or \fbox{...} whose braces close
// ("\boxed 5" without braces also counts); nullopt when there is none.
std::optional<std::string> last_boxed(std::string_view text);

// `text` without leading and trailing ASCII whitespace.
std::string_view trim(std::string_view text);

}  // namespace r1kit
