// `subprocess`: a reward written in any language. The user's command is started
// once (num_processes copies) and kept alive; each call writes the sample as one
// JSON line on its stdin and reads one JSON line back that echoes the request's id:
//   request: {"id": 7, "prompt": ..., "completion": ..., "completion_ids": [...],
//             "reference": ..., "metadata": {...}}
//   reply:   {"id": 7, "reward": 0.5, "components": {"name": 1.0}, "info": ...}
//   ("reward": null = not applicable; docs/reward-protocols.md has the details)
// A process that dies is restarted on the next call; one that misses the
// deadline or replies with anything but that one line is killed (with its
// process group) and restarted, so a stray line never shifts a score onto
// another sample. The child's stderr is forwarded to ours and its end quoted in
// errors. Relative paths in `command` that name files in the recipe's folder
// are made absolute. Thread-safe: a call takes a free process.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/config.h"
#include "common/error.h"
#include "common/logging.h"
#include "rewards/reward.h"
#include "rewards/reward_protocol.h"

extern char** environ;

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kStderrKeptBytes = 4096;  // of each process's stderr, for error messages
constexpr size_t kStderrShownBytes = 600;  // of which an error message quotes the end

struct SubprocessOptions {
  std::vector<std::string>
      command;                    // argv of the program, e.g. ["python3", "my_reward.py"]; required
  int64_t num_processes = 1;      // copies kept alive; calls beyond this wait for a free one
  double timeout_seconds = 30.0;  // deadline of a call made without one (outside RewardSet)

  void visit(ConfigVisitor& v) {
    v.field("command", command, {.required = true});
    v.field("num_processes", num_processes, {.min = 1.0, .max = 256.0});
    v.field("timeout_seconds", timeout_seconds, {.min = 0.0, .min_exclusive = true});
    if (command.empty()) v.fail("command", "must name a program");
  }
};

// The folder of the recipe file that `source` starts with ("dir/r.json:
// rewards[0].options" -> "/abs/dir"); empty when `source` names no file.
std::filesystem::path recipe_folder(const std::string& source) {
  for (size_t end = source.find(": ");; end = source.find(": ", end + 1)) {
    std::string prefix = source.substr(0, end);
    std::error_code error;
    if (!prefix.empty() && std::filesystem::is_regular_file(prefix, error)) {
      return std::filesystem::absolute(prefix, error).parent_path();
    }
    if (end == std::string::npos) return {};
  }
}

// `command` with each relative path that names a file in `folder` made
// absolute, so a recipe runs from any directory. The program itself is
// resolved only when written as a path ("./reward.sh"), not as a name looked
// up on PATH ("python3").
std::vector<std::string> resolve_command(std::vector<std::string> command,
                                         const std::filesystem::path& folder) {
  if (folder.empty()) return command;
  for (size_t i = 0; i < command.size(); ++i) {
    std::filesystem::path argument(command[i]);
    if (argument.empty() || argument.is_absolute()) continue;
    if (i == 0 && command[i].find('/') == std::string::npos) continue;
    std::error_code error;
    std::filesystem::path candidate = (folder / argument).lexically_normal();
    if (std::filesystem::is_regular_file(candidate, error)) command[i] = candidate.string();
  }
  return command;
}

int remaining_ms(Deadline deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// One running copy of the command: its pid and the three pipe ends we hold.
struct Process {
  pid_t pid = -1;
  int to_child = -1;         // its stdin
  int from_child = -1;       // its stdout
  int errors_of_child = -1;  // its stderr; -1 once it reached end of file
  std::string pending;       // bytes read past the last newline
  std::string stderr_tail;   // the last kStderrKeptBytes it wrote to stderr
  bool busy = false;

  bool alive() const { return pid > 0; }
};

class SubprocessReward : public RewardFn {
 public:
  SubprocessReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<SubprocessOptions>(options, source)),
        processes_(options_.num_processes) {
    options_.command = resolve_command(options_.command, recipe_folder(source));
    // A child that dies mid-write must not kill us with SIGPIPE; the write's EPIPE says it.
    signal(SIGPIPE, SIG_IGN);
    std::string problem = start(processes_[0]);
    if (!problem.empty()) throw_config_error(source + ": subprocess reward: " + problem);
  }

  ~SubprocessReward() override {
    for (Process& p : processes_) stop(p, /*polite=*/true);
  }

  RewardResult score(const Sample& sample) const override {
    return score_until(sample,
                       Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(options_.timeout_seconds)));
  }

  RewardResult score_until(const Sample& sample, Deadline deadline) const override {
    Process& process = acquire(deadline);
    struct Release {
      const SubprocessReward* self;
      Process& p;
      ~Release() { self->release(p); }
    } release{this, process};

    if (!process.alive()) {
      std::string problem = start(process);
      if (!problem.empty()) throw Error("subprocess reward: " + problem);
    }
    const int64_t id = next_id_++;
    nlohmann::json request = sample_to_json(sample);
    request["id"] = id;
    if (!write_all(process, request.dump() + "\n", deadline)) {
      std::string why = exit_description(process);
      throw Error("subprocess reward: the process " + why +
                  " before taking the request; restarted on the next call" + stderr_quote(process));
    }
    std::string line = read_line(process, deadline);
    return parse_reply_line(line, id, process);
  }

 private:
  // Starts the command; returns "" or what went wrong.
  std::string start(Process& p) const {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
      close(in_pipe[0]);
      close(in_pipe[1]);
      return std::string("pipe: ") + std::strerror(errno);
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
      for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) close(fd);
      return std::string("pipe: ") + std::strerror(errno);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // Its own process group, so a kill reaches whatever it started too.
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    std::vector<char*> argv;
    for (const std::string& arg : options_.command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
      close(in_pipe[1]);
      close(out_pipe[0]);
      close(err_pipe[0]);
      return "cannot start \"" + options_.command[0] + "\": " + std::strerror(rc);
    }
    p.pid = pid;
    p.to_child = in_pipe[1];
    p.from_child = out_pipe[0];
    p.errors_of_child = err_pipe[0];
    p.pending.clear();
    p.stderr_tail.clear();
    return "";
  }

  // Reads one chunk of the child's stderr (poll said it is ready): forwarded
  // to ours, its end kept. At end of file the pipe is closed.
  void read_stderr(Process& p) const {
    char chunk[4096];
    ssize_t n = read(p.errors_of_child, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
      close(p.errors_of_child);
      p.errors_of_child = -1;
      return;
    }
    std::fwrite(chunk, 1, static_cast<size_t>(n), stderr);
    std::fflush(stderr);
    p.stderr_tail.append(chunk, static_cast<size_t>(n));
    if (p.stderr_tail.size() > kStderrKeptBytes)
      p.stderr_tail.erase(0, p.stderr_tail.size() - kStderrKeptBytes);
  }

  // Reads the child's stderr until end of file or `wait_ms` have passed.
  void drain_stderr(Process& p, int wait_ms) const {
    Deadline until = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (p.errors_of_child >= 0) {
      pollfd fd{p.errors_of_child, POLLIN, 0};
      int ready = poll(&fd, 1, remaining_ms(until));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return;
      read_stderr(p);
    }
  }

  // "; its stderr ends: ..." with the last lines the child wrote there, on one line.
  static std::string stderr_quote(const Process& p) {
    std::string tail = p.stderr_tail.size() > kStderrShownBytes
                           ? p.stderr_tail.substr(p.stderr_tail.size() - kStderrShownBytes)
                           : p.stderr_tail;
    std::string quoted;
    size_t start = 0;
    while (start < tail.size()) {
      size_t end = tail.find('\n', start);
      if (end == std::string::npos) end = tail.size();
      std::string line = tail.substr(start, end - start);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) quoted += (quoted.empty() ? "" : " | ") + line;
      start = end + 1;
    }
    return quoted.empty() ? "" : "; its stderr ends: " + quoted;
  }

  // Closes the pipes and ends the process: politely (EOF, a moment's grace) or with SIGKILL.
  void stop(Process& p, bool polite) const {
    if (p.to_child >= 0) close(p.to_child);
    if (p.from_child >= 0) close(p.from_child);
    p.to_child = p.from_child = -1;
    if (p.pid > 0) {
      int status = 0;
      bool exited = false;
      for (int i = 0; polite && i < 20 && !exited; ++i) {
        exited = waitpid(p.pid, &status, WNOHANG) == p.pid;
        if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!exited) {
        kill(-p.pid, SIGKILL);
        kill(p.pid, SIGKILL);
        waitpid(p.pid, &status, 0);
      }
    }
    if (p.errors_of_child >= 0) {
      drain_stderr(p, /*wait_ms=*/50);
      if (p.errors_of_child >= 0) close(p.errors_of_child);
      p.errors_of_child = -1;
    }
    p.pid = -1;
    p.pending.clear();
  }

  // "exited with status 3" / "was killed by signal 9" after reaping it and
  // reading the rest of its stderr (stderr_quote() quotes it).
  std::string exit_description(Process& p) const {
    int status = 0;
    std::string why = "stopped";
    bool reaped = false;
    for (int i = 0; p.pid > 0 && i < 20 && !reaped; ++i) {  // it may still be on its way out
      reaped = waitpid(p.pid, &status, WNOHANG) == p.pid;
      if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (reaped) {
      why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                              : "was killed by signal " + std::to_string(WTERMSIG(status));
      p.pid = -1;
    }
    drain_stderr(p, /*wait_ms=*/200);
    stop(p, /*polite=*/false);
    return why;
  }

  bool write_all(Process& p, const std::string& data, Deadline deadline) const {
    size_t written = 0;
    while (written < data.size()) {
      pollfd fds[2] = {{p.to_child, POLLOUT, 0}, {p.errors_of_child, POLLIN, 0}};
      int ready = poll(fds, 2, remaining_ms(deadline));
      if (ready == 0) {
        stop(p, false);
        throw RewardTimeout(
            "subprocess reward: the process did not take the request in time; killed");
      }
      if (ready < 0 && errno == EINTR) continue;
      if (fds[1].revents != 0) read_stderr(p);
      if (fds[0].revents == 0) continue;
      ssize_t n = write(p.to_child, data.data() + written, data.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      written += static_cast<size_t>(n);
    }
    return true;
  }

  std::string read_line(Process& p, Deadline deadline) const {
    char chunk[4096];
    while (true) {
      size_t newline = p.pending.find('\n');
      if (newline != std::string::npos) {
        std::string line = p.pending.substr(0, newline);
        p.pending.erase(0, newline + 1);
        return line;
      }
      pollfd fds[2] = {{p.from_child, POLLIN, 0}, {p.errors_of_child, POLLIN, 0}};
      int ready = poll(fds, 2, remaining_ms(deadline));
      if (ready == 0) {
        stop(p, false);
        throw RewardTimeout(
            "subprocess reward: no reply before the deadline; the process was killed and restarts");
      }
      if (ready < 0 && errno == EINTR) continue;
      if (fds[1].revents != 0) read_stderr(p);
      if (fds[0].revents == 0) continue;
      ssize_t n = read(p.from_child, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string why = exit_description(p);
        throw Error("subprocess reward: the process " + why +
                    " without replying; restarted on the next call" + stderr_quote(p));
      }
      p.pending.append(chunk, static_cast<size_t>(n));
      if (p.pending.size() > (64u << 20)) {
        stop(p, false);
        throw Error("subprocess reward: a reply line longer than 64 MiB; the process was killed");
      }
    }
  }

  // The reply to request `id`: one JSON line that echoes the id, and nothing after it.
  RewardResult parse_reply_line(const std::string& line, int64_t id, Process& p) const {
    try {
      nlohmann::json reply = nlohmann::json::parse(line);
      check_reply_id(reply, id);
      RewardResult result = parse_reward_reply(reply);
      if (!p.pending.empty()) {
        throw std::runtime_error(
            "more output followed it; the program must write one line per "
            "request");
      }
      return result;
    } catch (const std::exception& e) {
      // Out of step with the protocol: start afresh rather than misread later replies.
      stop(p, false);
      std::string shown = line.size() > 80 ? line.substr(0, 77) + "..." : line;
      throw Error("subprocess reward: bad reply \"" + shown + "\" (" + e.what() +
                  "); the process was restarted");
    }
  }

  Process& acquire(Deadline deadline) const {
    std::unique_lock lock(mutex_);
    while (true) {
      for (Process& p : processes_) {
        if (!p.busy) {
          p.busy = true;
          return p;
        }
      }
      if (free_.wait_until(lock, deadline) == std::cv_status::timeout) {
        throw RewardTimeout("subprocess reward: every process stayed busy until the deadline");
      }
    }
  }

  void release(Process& p) const {
    {
      std::lock_guard lock(mutex_);
      p.busy = false;
    }
    free_.notify_one();
  }

  SubprocessOptions options_;
  mutable std::atomic<int64_t> next_id_{0};  // the id of the next request, over all processes
  mutable std::mutex mutex_;
  mutable std::condition_variable free_;
  mutable std::vector<Process> processes_;
};

}  // namespace

REGISTER_REWARD("subprocess", SubprocessReward);

}  // namespace r1kit
