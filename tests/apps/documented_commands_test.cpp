// Every `r1kit` command example of README.md, docs/ and examples/*/README.md,
// and the examples of the --help texts, runs (tests/examples/
// run_documented_commands.sh makes a small world for them and runs each; a
// training example with --check). A documented example that stops working
// fails here, naming the page and the command.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/temp_folder.h"

namespace {

namespace fs = std::filesystem;

TEST(DocumentedCommands, EveryExampleInTheDocsAndHelpTextsRuns) {
  const fs::path build_dir = fs::path(R1KIT_BINARY).parent_path();
  const r1kit::testing::TempFolder temp;
  const std::string command = "bash " + std::string(R1KIT_SOURCE_DIR) +
                              "/tests/examples/run_documented_commands.sh " + build_dir.string() +
                              " " + (temp / "work").string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find(", 0 failed"), std::string::npos) << output;
  // At least the README's and the docs' examples, not an empty extraction.
  const size_t at = output.find("documented examples: ");
  ASSERT_NE(at, std::string::npos) << output;
  EXPECT_GE(std::stoi(output.substr(at + 21)), 20) << output;
}

}  // namespace
