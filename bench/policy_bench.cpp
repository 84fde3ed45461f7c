// BPE tokenizer encode throughput on one thread: about 4 MB of text, an
// English sentence three pieces in four and every fourth piece all the hard
// strings of the fixture's expected.json (emoji, CJK, invalid bytes, special
// tokens), encoded in one call. Run from the repository root:
//   build/bench_policy [TOKENIZER_FOLDER]   (default tests/fixtures/tokenizers/bpe512)
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "policy/tokenizer.h"

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path folder = argc > 1 ? argv[1] : "tests/fixtures/tokenizers/bpe512";
  try {
    auto tokenizer = r1kit::load_tokenizer(folder);
    std::ifstream expected_file(folder / "expected.json");
    const nlohmann::json cases = nlohmann::json::parse(expected_file)["cases"];
    std::string unit;
    for (const nlohmann::json& c : cases) unit += from_hex(c["text_hex"]) + "\n";
    const std::string english =
        "The policy samples a group of completions, scores each one, and moves toward the "
        "better. ";
    std::string text;
    for (int i = 0; text.size() < (4u << 20); ++i)
      text += (i % 4 == 0 ? unit : english) + std::to_string(i) + " ";
    const auto start = std::chrono::steady_clock::now();
    const size_t tokens = tokenizer->encode(text).size();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s encode: %.1f MB into %zu tokens in %.3f s on one thread: %.1f MB/s\n",
                folder.filename().c_str(), text.size() / 1e6, tokens, seconds,
                text.size() / 1e6 / seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_policy: %s\n", e.what());
    return 1;
  }
  return 0;
}
