// UTF-8 helpers of the tokenizers: repairing invalid bytes the way Rust's
// String::from_utf8_lossy and Python's errors="replace" do (one U+FFFD per
// maximal invalid subpart), and finding an incomplete trailing sequence for
// streaming decode. Pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace r1kit {

// True when `bytes` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool utf8_is_valid(std::string_view bytes);

// `bytes` with every maximal invalid subpart replaced by U+FFFD (Unicode 15, 3.9 "U+FFFD
// substitution").
std::string utf8_repair(std::string_view bytes);

// Length of the longest prefix of `bytes` that does not end inside a sequence
// that is valid so far but cut short; the rest may complete with more bytes.
size_t utf8_complete_prefix(std::string_view bytes);

// Decodes the code point at `pos` of valid UTF-8 and advances `pos` past it.
char32_t utf8_next(std::string_view text, size_t& pos);

// Appends the UTF-8 encoding of `code_point`.
void utf8_append(std::string& out, char32_t code_point);

}  // namespace r1kit
