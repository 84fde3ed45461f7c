// Cleaning of corpus text before tokenisation: invalid UTF-8 repaired, Unicode
// NFC normalisation (ICU), control characters dropped, line ends unified, and
// a 128-bit content hash for exact de-duplication. Pure functions, safe from
// any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace r1kit {

// `text` cleaned for training: invalid UTF-8 becomes U+FFFD; "\r\n" and a
// lone "\r" become "\n"; other C0 controls, DEL and C1 controls (U+0080..U+009F)
// are removed, "\n" and "\t" kept; the result is NFC-normalised (so "é" typed
// as e + U+0301 and as U+00E9 hash alike) and trimmed of leading and trailing
// whitespace (space, \n, \t). `normalize` = false skips NFC.
std::string clean_text(std::string_view text, bool normalize = true);

// Unicode NFC of valid UTF-8 `text` (ICU's Normalizer2).
std::string nfc_normalize(std::string_view text);

// Number of code points of valid UTF-8 `text` (the unit of the length filters).
int64_t utf8_length(std::string_view text);

// A 128-bit hash of `text`, fixed across platforms and runs (two 64-bit lanes
// of a multiply-xorshift hash with different seeds): the de-duplication key.
// Collisions are negligible (~1e-20 for 1e9 documents).
struct ContentHash {
  uint64_t high = 0;
  uint64_t low = 0;
  bool operator==(const ContentHash& other) const = default;
};
ContentHash content_hash(std::string_view text);

struct ContentHashOf {
  size_t operator()(const ContentHash& h) const {
    return static_cast<size_t>(h.low ^ (h.high * 0x9E3779B97F4A7C15ull));
  }
};

}  // namespace r1kit
