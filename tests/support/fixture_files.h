// Reading the committed fixtures' expectation files: JSON files, and strings
// the fixture scripts store as hex so that invalid UTF-8 survives JSON.
// Inline, header-only, any thread.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace r1kit::testing {

// "68690a" -> "hi\n": two hex digits per byte.
inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace r1kit::testing
