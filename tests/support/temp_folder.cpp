#include "tests/support/temp_folder.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace r1kit::testing {
namespace {

// "Suite.Name" of the running test with path separators replaced, or "test".
std::string current_test_label() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "test";
  std::string label = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : label) {
    if (c == '/') c = '_';
  }
  return label;
}

}  // namespace

TempFolder::TempFolder(std::string_view label) {
  const std::string name =
      "r1kit-" + (label.empty() ? current_test_label() : std::string(label)) + "-XXXXXX";
  std::string pattern = (std::filesystem::temp_directory_path() / name).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error(pattern +
                             ": cannot create a temporary folder: " + std::strerror(errno));
  }
  path_ = buffer.data();
}

TempFolder::~TempFolder() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempFolder::write_file(const std::filesystem::path& relative,
                                             std::string_view text) const {
  const std::filesystem::path file = path_ / relative;
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw std::runtime_error(file.string() + ": cannot write the file");
  return file;
}

std::filesystem::path TempFolder::make_folder(const std::filesystem::path& relative) const {
  const std::filesystem::path folder = path_ / relative;
  std::filesystem::create_directories(folder);
  return folder;
}

}  // namespace r1kit::testing
