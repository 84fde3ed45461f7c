#include "data/text_cleaning.h"

#include <cstring>

#include "common/error.h"
#include "common/unicode_nfc.h"
#include "policy/tokenizer_utf8.h"

namespace r1kit {
namespace {

bool is_removed_control(char32_t c) {
  if (c == U'\n' || c == U'\t') return false;
  return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

bool is_trimmed(char c) { return c == ' ' || c == '\n' || c == '\t'; }

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

uint64_t hash_lane(std::string_view text, uint64_t seed, uint64_t multiplier) {
  uint64_t h = seed ^ (static_cast<uint64_t>(text.size()) * multiplier);
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    h = (h ^ mix64(word + seed)) * multiplier;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  for (size_t k = 0; i + k < text.size(); ++k) {
    tail |= static_cast<uint64_t>(static_cast<unsigned char>(text[i + k])) << (8 * k);
  }
  h = (h ^ mix64(tail + seed + 1)) * multiplier;
  return mix64(h);
}

}  // namespace

std::string nfc_normalize(std::string_view text) { return unicode_nfc(text); }

std::string clean_text(std::string_view text, bool normalize) {
  std::string repaired = utf8_is_valid(text) ? std::string(text) : utf8_repair(text);
  std::string kept;
  kept.reserve(repaired.size());
  size_t pos = 0;
  while (pos < repaired.size()) {
    size_t start = pos;
    char32_t c = utf8_next(repaired, pos);
    if (c == U'\r') {
      kept.push_back('\n');
      if (pos < repaired.size() && repaired[pos] == '\n') ++pos;  // "\r\n" is one line end
      continue;
    }
    if (is_removed_control(c)) continue;
    kept.append(repaired, start, pos - start);
  }
  std::string normalized = normalize ? nfc_normalize(kept) : std::move(kept);
  size_t begin = 0, end = normalized.size();
  while (begin < end && is_trimmed(normalized[begin])) ++begin;
  while (end > begin && is_trimmed(normalized[end - 1])) --end;
  return normalized.substr(begin, end - begin);
}

int64_t utf8_length(std::string_view text) {
  int64_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

ContentHash content_hash(std::string_view text) {
  return {hash_lane(text, 0x243F6A8885A308D3ull, 0x9E3779B97F4A7C15ull),
          hash_lane(text, 0x13198A2E03707344ull, 0xC2B2AE3D27D4EB4Full)};
}

}  // namespace r1kit
