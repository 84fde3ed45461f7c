// Sandbox: runs an untrusted program (model-written code) in fresh Linux
// namespaces (user, PID, network, mount, IPC, UTS) under rlimits and a seccomp
// filter, with a private tmpfs as the only writable place, and returns its exit
// status and capped output. Thread-safe: run() may be called from many threads
// at once; each call owns its processes and kills all of them before returning.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace r1kit {

// What every run of one Sandbox may use. Limits hold per process (rlimits) and
// per run (the tmpfs size, the process count, the deadline).
struct SandboxLimits {
  double cpu_seconds = 5.0;            // RLIMIT_CPU of each process, rounded up to whole seconds
  int64_t memory_mb = 512;             // RLIMIT_AS (address space) of each process
  int64_t max_processes = 16;          // processes alive at once in the sandbox (RLIMIT_NPROC)
  int64_t max_file_bytes = 16 << 20;   // the work folder's size (tmpfs) and RLIMIT_FSIZE
  int64_t max_output_bytes = 1 << 20;  // stdout, and stderr, each; more kills the run
  std::vector<std::string> read_only_paths;  // extra host paths visible read-only (absolute)
};

// A file placed in the work folder (/tmp inside) before the program starts.
struct SandboxFile {
  std::string name;  // a plain name, no '/'
  std::string content;
  bool executable = false;
};

// One program to run.
struct SandboxRun {
  std::vector<std::string> argv;  // argv[0] is an absolute path as seen inside
  std::vector<SandboxFile> files;
  std::string stdin_data;
  std::chrono::steady_clock::time_point deadline;  // wall clock; the whole sandbox dies then
  // A file of the work folder sent back when the program exits with status 0
  // (a compiler's output); "" = none. At most max_file_bytes.
  std::string collect_file;
};

// How a run ended.
enum class SandboxOutcome {
  kExited,       // the program exited; see exit_code
  kSignaled,     // killed by a signal (its own crash, or RLIMIT_CPU's SIGXCPU/SIGKILL)
  kTimedOut,     // still running at the deadline; killed with everything it started
  kOutputLimit,  // wrote more than max_output_bytes; killed
};

struct SandboxResult {
  SandboxOutcome outcome = SandboxOutcome::kExited;
  int exit_code = 0;  // kExited: the status
  int signal = 0;     // kSignaled: the signal
  std::string stdout_data;
  std::string stderr_data;
  std::string collected;  // the collect_file's bytes (exit status 0 only)
  double wall_seconds = 0.0;

  bool succeeded() const { return outcome == SandboxOutcome::kExited && exit_code == 0; }
  // "exit status 1", "signal 9", "timed out", "output limit".
  std::string describe() const;
};

class Sandbox {
 public:
  // Checks the limits (a config error names the field). Starts nothing. Sets
  // SIGPIPE to ignored in this process (a write to an exited program's stdin
  // must fail with EPIPE, as the subprocess reward also needs).
  explicit Sandbox(SandboxLimits limits);

  // Runs `run` and waits for it (or its deadline). Every process it started is
  // dead when this returns. Throws Error when the sandbox itself cannot be set
  // up (no user namespaces, a missing interpreter): never runs unsandboxed.
  SandboxResult run(const SandboxRun& run) const;

  const SandboxLimits& limits() const { return limits_; }

  // "" when this machine can build the sandbox; otherwise why not. Checked once
  // per process by setting a sandbox up with no program in it.
  static std::string unavailable_reason();

 private:
  SandboxLimits limits_;
};

}  // namespace r1kit
