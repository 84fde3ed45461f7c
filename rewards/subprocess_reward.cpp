// `subprocess`: a reward written in any language. The user's command is started
// once (num_processes copies) and kept alive; each call writes the sample as one
// JSON line on its stdin and reads one JSON line back:
//   request: {"prompt": ..., "completion": ..., "completion_ids": [...], "reference": ...,
//   "metadata": {...}} reply:   {"reward": 0.5, "components": {"name": 1.0}, "info": ...}
//   ("reward": null = not applicable)
// A process that dies is restarted on the next call; one that misses the
// deadline or replies with something that is not such a line is killed (with
// its process group) and restarted. Thread-safe: a call takes a free process.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
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

int remaining_ms(Deadline deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// One running copy of the command: its pid and the two pipe ends we hold.
struct Process {
  pid_t pid = -1;
  int to_child = -1;    // its stdin
  int from_child = -1;  // its stdout
  std::string pending;  // bytes read past the last newline
  bool busy = false;

  bool alive() const { return pid > 0; }
};

class SubprocessReward : public RewardFn {
 public:
  SubprocessReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<SubprocessOptions>(options, source)),
        processes_(options_.num_processes) {
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
    std::string request = sample_to_json(sample).dump() + "\n";
    if (!write_all(process, request, deadline)) {
      std::string why = exit_description(process);
      throw Error("subprocess reward: the process " + why +
                  " before taking the request; restarted on the next call");
    }
    std::string line = read_line(process, deadline);
    return parse_reply_line(line, process);
  }

 private:
  // Starts the command; returns "" or what went wrong.
  std::string start(Process& p) const {
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
      close(in_pipe[0]);
      close(in_pipe[1]);
      return std::string("pipe: ") + std::strerror(errno);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
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
    if (rc != 0) {
      close(in_pipe[1]);
      close(out_pipe[0]);
      return "cannot start \"" + options_.command[0] + "\": " + std::strerror(rc);
    }
    p.pid = pid;
    p.to_child = in_pipe[1];
    p.from_child = out_pipe[0];
    p.pending.clear();
    return "";
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
    p.pid = -1;
    p.pending.clear();
  }

  // "exited with status 3" / "was killed by signal 9" after reaping it.
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
    stop(p, /*polite=*/false);
    return why;
  }

  bool write_all(Process& p, const std::string& data, Deadline deadline) const {
    size_t written = 0;
    while (written < data.size()) {
      pollfd fd{p.to_child, POLLOUT, 0};
      int ready = poll(&fd, 1, remaining_ms(deadline));
      if (ready == 0) {
        stop(p, false);
        throw RewardTimeout(
            "subprocess reward: the process did not take the request in time; killed");
      }
      if (ready < 0 && errno == EINTR) continue;
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
      pollfd fd{p.from_child, POLLIN, 0};
      int ready = poll(&fd, 1, remaining_ms(deadline));
      if (ready == 0) {
        stop(p, false);
        throw RewardTimeout(
            "subprocess reward: no reply before the deadline; the process was killed and restarts");
      }
      if (ready < 0 && errno == EINTR) continue;
      ssize_t n = read(p.from_child, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string why = exit_description(p);
        throw Error("subprocess reward: the process " + why +
                    " without replying; restarted on the next call");
      }
      p.pending.append(chunk, static_cast<size_t>(n));
      if (p.pending.size() > (64u << 20)) {
        stop(p, false);
        throw Error("subprocess reward: a reply line longer than 64 MiB; the process was killed");
      }
    }
  }

  RewardResult parse_reply_line(const std::string& line, Process& p) const {
    try {
      return parse_reward_reply(nlohmann::json::parse(line));
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
  mutable std::mutex mutex_;
  mutable std::condition_variable free_;
  mutable std::vector<Process> processes_;
};

}  // namespace

REGISTER_REWARD("subprocess", SubprocessReward);

}  // namespace r1kit
