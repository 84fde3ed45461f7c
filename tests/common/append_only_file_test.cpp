// The run's line files: a write that fails part-way (here a file-size limit,
// as a briefly full disk) throws an I/O error naming the file and leaves the
// file ending with its last whole line, and a later write appends after it.
#include "common/append_only_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/error.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AppendOnlyFile, AFailedWriteLeavesNoPartialLine) {
  const testing::TempFolder folder;
  const std::filesystem::path path = folder / "metrics.jsonl";
  // In a child: the size limit and SIGXFSZ stay out of the test process.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    AppendOnlyFile file(path, /*truncate=*/true);
    file.append("{\"step\": 1}\n");
    rlimit limit{.rlim_cur = 20, .rlim_max = RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &limit);
    bool threw = false;
    try {
      file.append("{\"step\": 2, \"reward\": 0.5}\n");  // crosses the 20-byte limit
    } catch (const Error& e) {
      threw = std::string(e.what()).find("metrics.jsonl: write failed") != std::string::npos;
    }
    limit.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &limit);
    file.append("{\"step\": 3}\n");
    _exit(threw ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "no I/O error naming the file";
  EXPECT_EQ(read_all(path), "{\"step\": 1}\n{\"step\": 3}\n");
}

TEST(AppendOnlyFile, AFullDeviceIsAnIoErrorNamingTheFile) {
  const testing::TempFolder folder;
  std::filesystem::create_symlink("/dev/full", folder / "samples.jsonl");
  AppendOnlyFile file(folder / "samples.jsonl", /*truncate=*/false);
  try {
    file.append("{}\n");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("samples.jsonl: write failed: No space left on device"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit
