// examples/custom_reward builds against the installed r1kit; its reward scores
// through `r1kit reward --plugin`, trains two GRPO steps through `train
// --plugin` and through a recipe's "plugins" key, and evaluates through `eval
// --plugin` (tests/examples/build_custom_reward.sh does the work: install,
// configure, build, score, train, evaluate; about a minute).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "tests/support/temp_folder.h"

namespace {

namespace fs = std::filesystem;

TEST(CustomRewardExample, BuildsAgainstTheInstalledPackageScoresTrainsAndEvaluates) {
  const fs::path build_dir = fs::path(R1KIT_BINARY).parent_path();
  const r1kit::testing::TempFolder temp;
  const fs::path work = temp / "work";
  std::string command = "bash " + std::string(R1KIT_SOURCE_DIR) +
                        "/tests/examples/build_custom_reward.sh " + build_dir.string() + " " +
                        work.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  int status = pclose(pipe);
  ASSERT_EQ(WEXITSTATUS(status), 0) << output;

  // keywords: 2/2, 1/2, 0/1 and one line without keywords (not applicable).
  std::istringstream lines(output);
  std::vector<std::string> keywords, hits;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> columns;
    for (std::string word; words >> word;) columns.push_back(word);
    if (!columns.empty() && columns[0] == "keywords") keywords = columns;
    if (!columns.empty() && columns[0] == "keywords/hits") hits = columns;
  }
  ASSERT_EQ(keywords.size(), 8u) << output;
  EXPECT_EQ(keywords[2], "0.5000") << output;  // mean of 1, 0.5, 0
  EXPECT_EQ(keywords[4], "3");                 // scored
  EXPECT_EQ(keywords[5], "1");                 // not applicable
  EXPECT_EQ(keywords[6], "0");                 // errors
  ASSERT_EQ(hits.size(), 4u) << output;
  EXPECT_EQ(hits[1], "1.0000");  // 2, 1, 0 hits

  for (const char* line : {"trained with --plugin: 2 steps",
                           "trained with the plugins key: 2 steps", "evaluated: 1 report"})
    EXPECT_NE(output.find(line), std::string::npos) << line << "\n" << output;
}

}  // namespace
