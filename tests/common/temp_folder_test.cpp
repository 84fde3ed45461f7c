// The tests' TempFolder (tests/support/temp_folder.h): unique folders named
// after the running test, files written with their parent folders, and
// everything removed when the object goes out of scope.
#include "tests/support/temp_folder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::TempFolder;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(TempFolder, IsAFreshFolderNamedAfterTheTestAndGoneAfterwards) {
  fs::path kept;
  {
    const TempFolder first, second;
    kept = first.path();
    EXPECT_TRUE(fs::is_directory(first.path()));
    EXPECT_TRUE(fs::is_empty(first.path()));
    EXPECT_NE(first.path(), second.path());
    EXPECT_TRUE(fs::equivalent(first.path().parent_path(), fs::temp_directory_path()));
    EXPECT_TRUE(first.path().filename().string().starts_with(
        "r1kit-TempFolder.IsAFreshFolderNamedAfterTheTestAndGoneAfterwards-"))
        << first.path();
    first.write_file("a/b/c.txt", "x");
  }
  EXPECT_FALSE(fs::exists(kept));
}

TEST(TempFolder, WritesFilesAndFoldersInside) {
  const TempFolder folder("label");
  EXPECT_TRUE(folder.path().filename().string().starts_with("r1kit-label-")) << folder.path();
  const std::string bytes("one\ntwo\0three", 13);
  const fs::path file = folder.write_file("nested/data.bin", bytes);
  EXPECT_EQ(file, folder / "nested" / "data.bin");
  EXPECT_EQ(read_text(file), bytes);
  folder.write_file("nested/data.bin", "shorter");
  EXPECT_EQ(read_text(file), "shorter");
  const fs::path made = folder.make_folder("x/y");
  EXPECT_TRUE(fs::is_directory(made));
  EXPECT_EQ(made, folder / "x" / "y");
}

}  // namespace
}  // namespace r1kit
