// The code_exec sandbox against hostile programs: a fork bomb, an endless loop,
// a 10 GB allocation, writes outside its folder, reading the user's home, a
// socket to a listener of this test, gigabytes of output and a daemon that
// outlives its parent. Each attack prints "escaped" only if it worked, so a
// contained attack scores 0; the test then checks the host: no process left,
// files outside unchanged, no connection made, this process's memory small.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/process_memory.h"
#include "rewards/reward.h"
#include "rewards/sandbox.h"

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

class CodeExecSandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = Sandbox::unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << "no sandbox on this machine: " << why;
  }

  // Small limits keep every attack short.
  static nlohmann::json options() {
    return {{"timeout_seconds", 1.0},
            {"memory_mb", 256},
            {"max_processes", 8},
            {"max_output_bytes", 1 << 16},
            {"max_file_bytes", 1 << 20}};
  }

  // The score of `program` on one test whose expected output is "escaped".
  static RewardResult score_attack(const std::string& program) {
    auto reward = make_reward("code_exec", options(), "test");
    Sample sample{.completion = "```python\n" + program + "\n```",
                  .metadata = {{"tests", {{{"input", ""}, {"output", "escaped"}}}}}};
    return reward->score(sample);
  }

  // A string no other process on this machine has in its command line.
  static std::string unique_token() {
    std::random_device device;
    return "r1kit-sandbox-test-" + std::to_string(getpid()) + "-" + std::to_string(device());
  }

  // Host processes whose command line holds `token`.
  static int processes_with(const std::string& token) {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::string name = entry.path().filename();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      std::ifstream in(entry.path() / "cmdline", std::ios::binary);
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(token) != std::string::npos) ++count;
    }
    return count;
  }

  // Python that replaces a process with one sleeping a minute, `token` in its argv.
  static std::string sleeper(const std::string& token) {
    return "os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(60)', '" +
           token + "'])";
  }
};

TEST_F(CodeExecSandbox, ForkBombIsContained) {
  auto started = Clock::now();
  RewardResult result = score_attack(
      "import os\n"
      "while True:\n"
      "    os.fork()\n");
  EXPECT_EQ(result.value, 0.0);
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));

  // Children that stay alive: at most max_processes, all gone afterwards.
  std::string token = unique_token();
  Sandbox sandbox({.cpu_seconds = 1, .memory_mb = 256, .max_processes = 8});
  SandboxResult run = sandbox.run({.argv = {"/usr/bin/python3", "-I", "/tmp/main.py"},
                                   .files = {{.name = "main.py",
                                              .content = "import os, time\n"
                                                         "children = 0\n"
                                                         "try:\n"
                                                         "    while True:\n"
                                                         "        if os.fork() == 0:\n"
                                                         "            " +
                                                         sleeper(token) +
                                                         "\n"
                                                         "        children += 1\n"
                                                         "except OSError:\n"
                                                         "    pass\n"
                                                         "print(children, flush=True)\n"
                                                         "time.sleep(60)\n"}},
                                   .deadline = Clock::now() + std::chrono::seconds(2)});
  EXPECT_EQ(run.outcome, SandboxOutcome::kTimedOut);
  ASSERT_FALSE(run.stdout_data.empty());
  EXPECT_LE(std::stoi(run.stdout_data), 8);
  EXPECT_EQ(processes_with(token), 0);
}

TEST_F(CodeExecSandbox, EndlessLoopIsKilledAtTheTimeout) {
  auto started = Clock::now();
  RewardResult result = score_attack("while True:\n    pass\nprint('escaped')");
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_EQ(result.value, 0.0);
  EXPECT_EQ(result.info["failure"]["why"], "timed out");
  EXPECT_GE(seconds, 0.9);
  EXPECT_LT(seconds, 3.0);
}

TEST_F(CodeExecSandbox, TenGigabyteAllocationFails) {
  RewardResult result = score_attack(
      "x = bytearray(10 * 1024**3)\n"
      "print('escaped')");
  EXPECT_EQ(result.value, 0.0);
  EXPECT_NE(result.info["failure"]["stderr"].get<std::string>().find("MemoryError"),
            std::string::npos);
  EXPECT_LT(peak_resident_gb(), 2.0);  // this process never held the 10 GB
}

TEST_F(CodeExecSandbox, WritesOutsideItsFolderFail) {
  std::string token = unique_token();
  std::vector<std::string> targets = {"/usr/" + token, "/usr/lib/" + token, "/etc/" + token,
                                      "/" + token, "/dev/" + token};
  std::string program = "import os\nwritten = 0\nfor path in [";
  for (const std::string& path : targets) program += "'" + path + "', ";
  program +=
      "]:\n"
      "    try:\n"
      "        with open(path, 'ab') as f: f.write(b'x')\n"
      "        written += 1\n"
      "    except OSError:\n"
      "        pass\n"
      "open('/tmp/mine', 'w').write('own folder is writable')\n"
      "print('escaped' if written else 'contained')\n";
  RewardResult result = score_attack(program);
  EXPECT_EQ(result.value, 0.0);
  EXPECT_EQ(result.info["failure"]["why"], "wrong output");  // it ran and printed "contained"
  for (const std::string& path : targets) {
    EXPECT_FALSE(std::filesystem::exists(path)) << path;
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
}

TEST_F(CodeExecSandbox, TheUsersHomeIsNotReadable) {
  const char* home = std::getenv("HOME");
  if (!home || !std::filesystem::is_directory(home)) GTEST_SKIP() << "no $HOME folder";
  std::filesystem::path marker = std::filesystem::path(home) / (".r1kit-sandbox-" + unique_token());
  {
    std::ofstream out(marker);
    if (!out) GTEST_SKIP() << "cannot write to $HOME";
    out << "escaped";
  }
  RewardResult result = score_attack(
      "import sys\n"
      "try:\n"
      "    open('" +
      marker.string() +
      "', 'a').write('\\nchanged')\n"
      "except OSError:\n"
      "    pass\n"
      "print(open('" +
      marker.string() + "').read())\n");
  std::ifstream in(marker);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(marker);
  EXPECT_EQ(result.value, 0.0);
  EXPECT_NE(result.info["failure"]["stderr"].get<std::string>().find("FileNotFoundError"),
            std::string::npos);
  EXPECT_EQ(content, "escaped");
}

TEST_F(CodeExecSandbox, NoNetworkReachesTheHost) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t length = sizeof(address);
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);

  RewardResult result = score_attack(
      "import socket\n"
      "s = socket.create_connection(('127.0.0.1', " +
      std::to_string(port) +
      "), timeout=0.5)\n"
      "print('escaped')\n");
  EXPECT_EQ(result.value, 0.0);
  pollfd pending{listener, POLLIN, 0};
  EXPECT_EQ(poll(&pending, 1, 100), 0) << "a connection reached the test's listener";
  close(listener);
}

TEST_F(CodeExecSandbox, GigabytesOfOutputAreCutOff) {
  auto started = Clock::now();
  RewardResult result = score_attack(
      "import sys\n"
      "chunk = 'x' * 65536\n"
      "for _ in range(32768):\n"
      "    sys.stdout.write(chunk)\n"
      "print('escaped')\n");
  EXPECT_EQ(result.value, 0.0);
  EXPECT_EQ(result.info["failure"]["why"], "output limit");
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(3));

  Sandbox sandbox({.max_output_bytes = 1 << 16});
  SandboxResult run = sandbox.run(
      {.argv = {"/usr/bin/python3", "-c", "import sys\nwhile True: sys.stderr.write('y' * 65536)"},
       .deadline = Clock::now() + std::chrono::seconds(5)});
  EXPECT_EQ(run.outcome, SandboxOutcome::kOutputLimit);
  EXPECT_EQ(run.stderr_data.size(), size_t{1} << 16);
  EXPECT_LT(peak_resident_gb(), 2.0);
}

TEST_F(CodeExecSandbox, DaemonThatOutlivesItsParentIsKilled) {
  std::string token = unique_token();
  auto started = Clock::now();
  RewardResult result = score_attack(
      "import os, sys, time\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    if os.fork() == 0:\n"
      "        if os.fork() == 0:\n"
      "            " +
      sleeper(token) +
      "\n"
      "        time.sleep(0.3)\n"
      "        print('escaped', flush=True)\n"
      "        time.sleep(60)\n"
      "    os._exit(0)\n"
      "os.wait()\n");
  EXPECT_EQ(result.value, 0.0);
  EXPECT_EQ(result.info["failure"]["why"], "wrong output");  // the parent's exit ended it all
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(1));
  EXPECT_EQ(processes_with(token), 0);
}

// The sandbox's first process is a copy of one thread of a multithreaded
// process; threads being created meanwhile must not make it wait forever
// (glibc's set*id wrappers would wait for copies of them).
TEST_F(CodeExecSandbox, RunsWhileOtherThreadsStartAndStop) {
  std::atomic<bool> stop = false;
  std::thread churn([&] {
    while (!stop) std::thread([] {}).join();
  });
  Sandbox sandbox({});
  int succeeded = 0;
  for (int i = 0; i < 20; ++i) {
    SandboxResult run = sandbox.run({.argv = {"/bin/sh", "-c", "echo $0", "ok"},
                                     .deadline = Clock::now() + std::chrono::seconds(3)});
    succeeded += run.succeeded() && run.stdout_data == "ok\n";
  }
  stop = true;
  churn.join();
  EXPECT_EQ(succeeded, 20);
}

TEST_F(CodeExecSandbox, NamespacesAndMountsCannotBeMadeAgain) {
  Sandbox sandbox({});
  SandboxResult run = sandbox.run(
      {.argv = {"/usr/bin/python3", "-c",
                "import ctypes, os\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "assert open('/dev/urandom', 'rb').read(4) and open('/dev/null', 'w').write('x')\n"
                "hidden = ['home', 'root', 'proc', 'sys', 'run', 'var', 'mnt', 'opt', 'srv']\n"
                "print(libc.unshare(0x10000000), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),"
                " os.getuid(), [d for d in hidden if os.path.exists('/' + d)])\n"},
       .deadline = Clock::now() + std::chrono::seconds(5)});
  ASSERT_TRUE(run.succeeded()) << run.describe() << run.stderr_data;
  EXPECT_EQ(run.stdout_data, "-1 -1 1000 []\n");
}

}  // namespace
}  // namespace r1kit
