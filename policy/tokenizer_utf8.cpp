#include "policy/tokenizer_utf8.h"

#include <cstdint>

namespace r1kit {
namespace {

// For a lead byte: how many continuation bytes follow and the allowed range of
// the first one (Unicode Table 3-7, well-formed byte sequences). 0 = not a lead.
struct LeadInfo {
  int continuation = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;
};

LeadInfo lead_info(uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {};
}

// Length of the well-formed sequence at `pos`, or -(length of the maximal
// invalid subpart) when it is ill-formed (at least 1 byte).
int sequence_at(std::string_view bytes, size_t pos) {
  auto b = static_cast<uint8_t>(bytes[pos]);
  if (b < 0x80) return 1;
  LeadInfo info = lead_info(b);
  if (info.continuation == 0) return -1;
  size_t j = pos + 1;
  for (int k = 0; k < info.continuation; ++k, ++j) {
    if (j >= bytes.size()) return -static_cast<int>(j - pos);
    auto c = static_cast<uint8_t>(bytes[j]);
    uint8_t lo = k == 0 ? info.lo : 0x80;
    uint8_t hi = k == 0 ? info.hi : 0xBF;
    if (c < lo || c > hi) return -static_cast<int>(j - pos);
  }
  return static_cast<int>(j - pos);
}

}  // namespace

bool utf8_is_valid(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    // ASCII runs are the common case.
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    int n = sequence_at(bytes, pos);
    if (n < 0) return false;
    pos += static_cast<size_t>(n);
  }
  return true;
}

std::string utf8_repair(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 8);
  size_t pos = 0;
  while (pos < bytes.size()) {
    int n = sequence_at(bytes, pos);
    if (n > 0) {
      out.append(bytes.substr(pos, static_cast<size_t>(n)));
      pos += static_cast<size_t>(n);
    } else {
      out.append("\xEF\xBF\xBD");
      pos += static_cast<size_t>(-n);
    }
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view bytes) {
  size_t n = bytes.size();
  // Walk back over at most three continuation bytes to the nearest lead byte.
  size_t start = n;
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    auto b = static_cast<uint8_t>(bytes[n - back]);
    if (b >= 0x80 && b <= 0xBF) continue;
    start = n - back;
    break;
  }
  if (start == n) return n;
  LeadInfo info = lead_info(static_cast<uint8_t>(bytes[start]));
  size_t have = n - start - 1;
  if (info.continuation == 0 || have >= static_cast<size_t>(info.continuation)) return n;
  // Cut short: hold it back only if what is there can still become valid.
  int seq = sequence_at(bytes, start);
  return -seq == static_cast<int>(n - start) ? start : n;
}

char32_t utf8_next(std::string_view text, size_t& pos) {
  auto b = static_cast<uint8_t>(text[pos]);
  if (b < 0x80) {
    ++pos;
    return b;
  }
  int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
  char32_t cp = b & (0x3F >> extra);
  ++pos;
  for (int k = 0; k < extra && pos < text.size(); ++k, ++pos) {
    cp = (cp << 6) | (static_cast<uint8_t>(text[pos]) & 0x3F);
  }
  return cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace r1kit
