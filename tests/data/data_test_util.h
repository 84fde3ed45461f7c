// Helpers shared by the data tests: fresh temporary folders, writing small
// files, and the bpe512 test tokenizer (ChatML tokens, eos <|im_end|>).
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "policy/tokenizer.h"

namespace r1kit::testing {

inline std::filesystem::path data_temp_folder(const std::string& name) {
  static std::atomic<int> counter{0};
  auto path =
      std::filesystem::temp_directory_path() /
      ("r1kit-data-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name);
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::filesystem::path bpe512_folder() {
  return std::filesystem::path(R1KIT_FIXTURES_DIR) / "tokenizers" / "bpe512";
}

inline std::shared_ptr<Tokenizer> bpe512() {
  static std::shared_ptr<Tokenizer> tokenizer = load_tokenizer(bpe512_folder());
  return tokenizer;
}

}  // namespace r1kit::testing
