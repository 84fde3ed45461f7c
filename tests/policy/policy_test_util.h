// Helpers shared by the policy tests: fixture paths, the expected values that
// tools/make_fixtures.py wrote, and fresh temporary folders.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "common/safetensors.h"

namespace r1kit::testing {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(R1KIT_FIXTURES_DIR) / name;
}

// tests/fixtures/<model>/expected.safetensors (see tools/make_fixtures.py).
inline std::map<std::string, at::Tensor> expected_values(const std::string& model) {
  return read_safetensors(fixture(model) / "expected.safetensors").tensors;
}

// A new empty folder under /tmp/r1kit-policy-<pid>/, removed when the tests exit.
inline std::filesystem::path temp_folder(const std::string& name) {
  struct Root {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("r1kit-policy-" + std::to_string(::getpid()));
    ~Root() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static Root root;
  static std::atomic<int> counter{0};
  auto path = root.path / (std::to_string(counter++) + "-" + name);
  std::filesystem::create_directories(path);
  return path;
}

inline const char* const kTinyModels[] = {"tiny-llama", "tiny-qwen2"};

}  // namespace r1kit::testing
