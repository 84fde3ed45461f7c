// Shared by the data tests: the bpe512 fixture tokenizer (ChatML tokens, eos
// <|im_end|>), loaded once and shared read-only (encode is thread-safe).
#pragma once

#include <filesystem>
#include <memory>

#include "policy/tokenizer.h"
#include "tests/support/tiny_model.h"

namespace r1kit::testing {

inline std::filesystem::path bpe512_folder() { return fixture_path("tokenizers/bpe512"); }

inline std::shared_ptr<Tokenizer> bpe512() {
  static std::shared_ptr<Tokenizer> tokenizer = load_tokenizer(bpe512_folder());
  return tokenizer;
}

}  // namespace r1kit::testing
