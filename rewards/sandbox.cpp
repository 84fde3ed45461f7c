// The sandbox (rewards/sandbox.h). One run:
//   parent: builds every path, argument and the seccomp filter first (the child
//           may not allocate: it shares the memory of a multithreaded process),
//           then clone()s with CLONE_VM (no copy of a training process's
//           gigabytes) and new user, PID, network, mount, IPC, UTS and cgroup
//           namespaces, writes the child's uid/gid maps and lets it go.
//   init (PID 1 inside): drops to the sandbox uid, assembles a new root on a
//           tmpfs (system folders bound read-only, four /dev nodes, a
//           size-limited tmpfs at /tmp), pivots into it, writes the files,
//           starts the program (CLONE_VM | CLONE_VFORK) and waits for it. When
//           the program exits, init reports its status and exits, and the
//           kernel kills every process left in the PID namespace (daemons,
//           orphans).
//   program: rlimits, no_new_privs, no capabilities, a seccomp filter, execve
//           (from then on in an address space of its own).
// The parent feeds stdin, reads stdout/stderr with a byte cap and SIGKILLs init
// at the deadline, which takes the whole namespace with it.
#include "rewards/sandbox.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

#include "common/error.h"

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uid_t kInsideId = 1000;      // the program's uid and gid inside
constexpr uid_t kNobody = 65534;       // the host uid the sandbox runs as when we are root
constexpr const char* kRoot = "/tmp";  // where init assembles the new root (its own mount ns)
constexpr int kMaxOpenFiles = 256;

// Messages on the report pipe, init/program -> parent.
constexpr char kReportError = 'E';   // int errno, uint16 length, the stage's name
constexpr char kReportStatus = 'S';  // int wait status of the program

// A host path bound into the new root.
struct Bind {
  std::string source;
  std::string target;  // kRoot + source
  bool is_directory;
  bool is_device;
};

// Everything init and the program read; filled before clone().
struct ChildPlan {
  int stdin_read = -1, stdout_write = -1, stderr_write = -1;
  int sync_read = -1, report_write = -1, collect_write = -1;
  bool drop_groups = false;  // we are root: clear supplementary groups (setgroups is allowed)
  bool probe_only = false;   // set the sandbox up, run nothing
  std::string root_options;  // tmpfs options of the new root
  std::string work_options;  // tmpfs options of /tmp inside
  std::string work_target;   // kRoot + "/tmp"
  std::vector<std::string> folders;                        // created under the new root, in order
  std::vector<std::pair<std::string, std::string>> links;  // (target text, link path)
  std::vector<Bind> binds;
  std::vector<std::pair<std::string, const SandboxFile*>> files;  // (path inside, file)
  std::string collect_path;                                       // "" or /tmp/<name>
  int64_t collect_limit = 0;
  std::vector<const char*> argv, envp;
  std::vector<std::string> env_storage;
  rlim_t cpu_seconds = 0, address_space = 0, processes = 0, file_bytes = 0;
  const sock_fprog* seccomp = nullptr;
  void* program_stack_top = nullptr;  // the program's stack until its execve
};

// --- helpers for init and the program before execve ---------------------------------
// They share the parent's memory (CLONE_VM), so they allocate nothing, and they
// call the kernel directly where glibc's wrappers are cancellation points that
// update the calling thread's state (which they share with the parent thread).

ssize_t raw_read(int fd, void* data, size_t size) { return syscall(SYS_read, fd, data, size); }
ssize_t raw_write(int fd, const void* data, size_t size) {
  return syscall(SYS_write, fd, data, size);
}
int raw_open(const char* path, int flags, mode_t mode = 0) {
  return static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}
void raw_close(int fd) { syscall(SYS_close, fd); }
pid_t raw_wait(int* status) {
  return static_cast<pid_t>(syscall(SYS_wait4, -1, status, 0, nullptr));
}

// Puts `from` at descriptor `to`, without close-on-exec.
bool move_descriptor(int from, int to) {
  if (from == to) return syscall(SYS_fcntl, to, F_SETFD, 0) == 0;
  return syscall(SYS_dup3, from, to, 0) == to;
}

void write_all_raw(int fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = raw_write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
}

// Reports 'E', errno, the stage's length (uint16) and the stage; exits.
[[noreturn]] void child_fail(const ChildPlan& plan, const char* stage) {
  int error = errno;
  char message[512];
  constexpr size_t kHeader = 1 + sizeof(int) + sizeof(uint16_t);
  uint16_t length = static_cast<uint16_t>(std::min(strlen(stage), sizeof(message) - kHeader));
  message[0] = kReportError;
  memcpy(message + 1, &error, sizeof(int));
  memcpy(message + 1 + sizeof(int), &length, sizeof(uint16_t));
  memcpy(message + kHeader, stage, length);
  write_all_raw(plan.report_write, message, kHeader + length);
  _exit(127);
}

// Closes descriptors first..last (close_range, or one by one before Linux 5.9).
void close_range_raw(unsigned int first, unsigned int last) {
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
  struct rlimit open_files;
  unsigned int end = getrlimit(RLIMIT_NOFILE, &open_files) == 0 && open_files.rlim_cur < 65536
                         ? static_cast<unsigned int>(open_files.rlim_cur)
                         : 65536;
  for (unsigned int fd = first; fd <= last && fd < end; ++fd) raw_close(static_cast<int>(fd));
}

// Closes every descriptor but `keep` (unsorted, -1 entries ignored).
void close_all_but(int* keep, int count) {
  std::sort(keep, keep + count);
  unsigned int next = 0;
  for (int i = 0; i < count; ++i) {
    if (keep[i] < 0 || static_cast<unsigned int>(keep[i]) < next) continue;
    if (static_cast<unsigned int>(keep[i]) > next)
      close_range_raw(next, static_cast<unsigned int>(keep[i]) - 1);
    next = static_cast<unsigned int>(keep[i]) + 1;
  }
  close_range_raw(next, ~0u);
}

// Makes the bind mount at `target` read-only, keeping the flags a user
// namespace may not clear (nosuid, noexec, ... of the host mount).
bool remount_read_only(const char* target) {
  struct statfs info;
  if (statfs(target, &info) != 0) return false;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV;
  if (info.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
  if (info.f_flags & ST_NOATIME) flags |= MS_NOATIME;
  if (info.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (info.f_flags & ST_RELATIME) flags |= MS_RELATIME;
  return mount(nullptr, target, nullptr, flags, nullptr) == 0;
}

[[noreturn]] void run_program(const ChildPlan& plan) {
  if (!move_descriptor(plan.stdin_read, 0) || !move_descriptor(plan.stdout_write, 1) ||
      !move_descriptor(plan.stderr_write, 2))
    child_fail(plan, "dup3");
  int keep[] = {0, 1, 2, plan.report_write};  // report_write is close-on-exec
  close_all_but(keep, 4);

  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &default_action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  auto limit = [&](int resource, rlim_t value, const char* stage) {
    struct rlimit r = {value, value};
    if (setrlimit(resource, &r) != 0) child_fail(plan, stage);
  };
  limit(RLIMIT_CPU, plan.cpu_seconds, "setrlimit(RLIMIT_CPU)");
  limit(RLIMIT_AS, plan.address_space, "setrlimit(RLIMIT_AS)");
  limit(RLIMIT_NPROC, plan.processes, "setrlimit(RLIMIT_NPROC)");
  limit(RLIMIT_FSIZE, plan.file_bytes, "setrlimit(RLIMIT_FSIZE)");
  limit(RLIMIT_CORE, 0, "setrlimit(RLIMIT_CORE)");
  limit(RLIMIT_NOFILE, kMaxOpenFiles, "setrlimit(RLIMIT_NOFILE)");
  limit(RLIMIT_MEMLOCK, 0, "setrlimit(RLIMIT_MEMLOCK)");
  limit(RLIMIT_MSGQUEUE, 0, "setrlimit(RLIMIT_MSGQUEUE)");

  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct no_capabilities[2] = {};
  if (syscall(SYS_capset, &header, no_capabilities) != 0) child_fail(plan, "capset");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(plan, "prctl(NO_NEW_PRIVS)");
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan.seccomp, 0, 0) != 0)
    child_fail(plan, "seccomp");
  execve(plan.argv[0], const_cast<char* const*>(plan.argv.data()),
         const_cast<char* const*>(plan.envp.data()));
  child_fail(plan, plan.argv[0]);
}

int program_entry(void* plan) { run_program(*static_cast<const ChildPlan*>(plan)); }

// PID 1 of the sandbox.
[[noreturn]] void run_init(const ChildPlan& plan) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int keep[] = {plan.stdin_read, plan.stdout_write, plan.stderr_write,
                plan.sync_read,  plan.report_write, plan.collect_write};
  close_all_but(keep, 6);
  char go = 0;
  while (raw_read(plan.sync_read, &go, 1) < 0 && errno == EINTR) {
  }
  if (go != 'g') _exit(126);  // the parent gave up (its uid map failed) or died
  raw_close(plan.sync_read);

  // Raw system calls: glibc's wrappers would signal (and wait for) the parent's
  // other threads, which do not exist here.
  if (plan.drop_groups && syscall(SYS_setgroups, 0, nullptr) != 0) child_fail(plan, "setgroups");
  if (syscall(SYS_setresgid, kInsideId, kInsideId, kInsideId) != 0) child_fail(plan, "setresgid");
  if (syscall(SYS_setresuid, kInsideId, kInsideId, kInsideId) != 0) child_fail(plan, "setresuid");
  sethostname("sandbox", 7);

  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    child_fail(plan, "mount(/, private)");
  if (mount("tmpfs", kRoot, "tmpfs", MS_NOSUID | MS_NODEV, plan.root_options.c_str()) != 0)
    child_fail(plan, "mount(tmpfs, new root)");
  for (const std::string& folder : plan.folders)
    if (mkdir(folder.c_str(), 0755) != 0 && errno != EEXIST) child_fail(plan, "mkdir");
  for (const auto& [target, link] : plan.links)
    if (symlink(target.c_str(), link.c_str()) != 0) child_fail(plan, "symlink");
  for (const Bind& bind : plan.binds) {
    if (bind.is_directory) {
      if (mkdir(bind.target.c_str(), 0755) != 0 && errno != EEXIST)
        child_fail(plan, "mkdir(bind target)");
    } else {
      int fd = raw_open(bind.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) child_fail(plan, "create(bind target)");
      raw_close(fd);
    }
    // Not recursive: a submount of a read-only folder would stay writable.
    if (mount(bind.source.c_str(), bind.target.c_str(), nullptr, MS_BIND, nullptr) != 0)
      child_fail(plan, bind.source.c_str());
    if (!bind.is_device && !remount_read_only(bind.target.c_str()))
      child_fail(plan, "remount read-only");
  }
  if (mkdir(plan.work_target.c_str(), 0755) != 0) child_fail(plan, "mkdir(/tmp)");
  if (mount("tmpfs", plan.work_target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
            plan.work_options.c_str()) != 0)
    child_fail(plan, "mount(tmpfs, /tmp)");

  if (chdir(kRoot) != 0) child_fail(plan, "chdir(new root)");
  if (syscall(SYS_pivot_root, ".", ".") != 0) child_fail(plan, "pivot_root");
  if (umount2(".", MNT_DETACH) != 0) child_fail(plan, "umount(old root)");
  if (chdir("/") != 0) child_fail(plan, "chdir(/)");
  if (mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) != 0)
    child_fail(plan, "remount / read-only");

  for (const auto& [path, file] : plan.files) {
    int fd = raw_open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                      file->executable ? 0755 : 0644);
    if (fd < 0) child_fail(plan, "create(work file)");
    size_t done = 0;
    while (done < file->content.size()) {
      ssize_t n = raw_write(fd, file->content.data() + done, file->content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) child_fail(plan, "write(work file)");
      done += static_cast<size_t>(n);
    }
    raw_close(fd);
  }
  if (chdir("/tmp") != 0) child_fail(plan, "chdir(/tmp)");

  int status = 0;
  if (!plan.probe_only) {
    // vfork-like: no copy of the (parent's, possibly huge) address space; init
    // waits until the program's execve.
    pid_t program = clone(program_entry, plan.program_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD,
                          const_cast<ChildPlan*>(&plan));
    if (program < 0) child_fail(plan, "clone(program)");
    raw_close(plan.stdin_read);
    raw_close(plan.stdout_write);
    raw_close(plan.stderr_write);
    while (true) {  // reap orphans until the program itself exits
      int reaped_status = 0;
      pid_t reaped = raw_wait(&reaped_status);
      if (reaped == program) {
        status = reaped_status;
        break;
      }
      if (reaped < 0 && errno != EINTR) child_fail(plan, "waitpid(program)");
    }
  }
  if (plan.collect_write >= 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      int fd = raw_open(plan.collect_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      struct stat info;
      if (fd >= 0 && fstat(fd, &info) == 0 && S_ISREG(info.st_mode)) {
        char buffer[65536];
        int64_t left = plan.collect_limit;
        ssize_t n;
        while (left > 0 && (n = raw_read(fd, buffer, sizeof(buffer))) > 0) {
          write_all_raw(plan.collect_write, buffer, static_cast<size_t>(n));
          left -= n;
        }
      }
      if (fd >= 0) raw_close(fd);
    }
    raw_close(plan.collect_write);
  }
  char report[1 + sizeof(int)] = {kReportStatus};
  memcpy(report + 1, &status, sizeof(int));
  write_all_raw(plan.report_write, report, sizeof(report));
  _exit(0);  // the kernel now kills whatever the program left running
}

int init_entry(void* plan) { run_init(*static_cast<const ChildPlan*>(plan)); }

// --- the seccomp filter -------------------------------------------------------------

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "the sandbox's seccomp filter knows x86_64 and aarch64"
#endif

// Refused with EPERM: ways out of the namespaces, kernel attack surface the
// program has no use for, and tracing. clone3 answers ENOSYS (libc then uses
// clone, whose flags the filter can read).
const sock_fprog* seccomp_filter() {
  static const std::vector<sock_filter> program = [] {
    std::vector<int> refused = {
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_chroot,
        SYS_unshare,
        SYS_setns,
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_kexec_load,
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_open_by_handle_at,
        SYS_name_to_handle_at,
        SYS_acct,
        SYS_swapon,
        SYS_swapoff,
        SYS_reboot,
        SYS_syslog,
        SYS_quotactl,
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_fsopen,
        SYS_fsmount,
        SYS_fsconfig,
        SYS_fspick,
        SYS_open_tree,
        SYS_move_mount,
        SYS_mount_setattr,
        SYS_kexec_file_load,
        SYS_personality,
        SYS_fanotify_init,

        SYS_vhangup,
        SYS_pidfd_getfd,
    };
    const uint32_t namespace_flags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                     CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME;
    auto stmt = [](uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; };
    auto jump = [](uint16_t code, uint32_t k, uint8_t yes, uint8_t no) {
      return sock_filter{code, yes, no, k};
    };
    const uint32_t refuse = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
    std::vector<sock_filter> f;
    f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0));
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
#if defined(__x86_64__)
    f.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));  // x32 system calls
    f.push_back(stmt(BPF_RET | BPF_K, refuse));
#endif
    for (int nr : refused) {
      f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
      f.push_back(stmt(BPF_RET | BPF_K, refuse));
    }
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1));
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3));
    f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])));  // low half
    f.push_back(jump(BPF_JMP | BPF_JSET | BPF_K, namespace_flags, 0, 1));
    f.push_back(stmt(BPF_RET | BPF_K, refuse));
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    return f;
  }();
  static const sock_fprog fprog = {static_cast<unsigned short>(program.size()),
                                   const_cast<sock_filter*>(program.data())};
  return &fprog;
}

// --- the parent ---------------------------------------------------------------------

class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(Descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Descriptor& operator=(Descriptor&& other) noexcept {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  ~Descriptor() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Descriptor read_end, write_end;
};

Pipe make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("sandbox: pipe: ") + strerror(errno));
  return {Descriptor(fds[0]), Descriptor(fds[1])};
}

void write_proc_file(pid_t pid, const char* name, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    std::string why = strerror(errno);
    if (fd >= 0) close(fd);
    throw Error("sandbox: cannot write " + path + ": " + why);
  }
  close(fd);
}

// The host's root entries the program sees: folders bound read-only, links copied.
void add_system_paths(ChildPlan& plan) {
  namespace fs = std::filesystem;
  for (const char* entry : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code error;
    fs::file_status status = fs::symlink_status(entry, error);
    if (error || !fs::exists(status)) continue;
    if (fs::is_symlink(status)) {
      plan.links.emplace_back(fs::read_symlink(entry).string(), std::string(kRoot) + entry);
    } else if (fs::is_directory(status)) {
      plan.binds.push_back({entry, std::string(kRoot) + entry, true, false});
    }
  }
  plan.folders.push_back(std::string(kRoot) + "/etc");
  for (const char* entry : {"/etc/ld.so.cache", "/etc/alternatives"}) {
    std::error_code error;
    fs::file_status status = fs::status(entry, error);
    if (error || !fs::exists(status)) continue;
    plan.binds.push_back({entry, std::string(kRoot) + entry, fs::is_directory(status), false});
  }
  plan.folders.push_back(std::string(kRoot) + "/dev");
  for (const char* device : {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"})
    plan.binds.push_back({device, std::string(kRoot) + device, false, true});
}

void add_user_paths(ChildPlan& plan, const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  for (const std::string& path : paths) {
    // Parents first; the folders list creates each one once (EEXIST is fine).
    fs::path inside = fs::path(path).relative_path();
    fs::path prefix = kRoot;
    for (auto part = inside.begin(); part != inside.end(); ++part) {
      if (std::next(part) == inside.end()) break;
      prefix /= *part;
      plan.folders.push_back(prefix.string());
    }
    plan.binds.push_back({path, std::string(kRoot) + path, fs::is_directory(path), false});
  }
}

// The stacks of init and of the program before its execve, one mapping.
class Stacks {
 public:
  static constexpr size_t kInitBytes = 512 << 10, kProgramBytes = 256 << 10;
  Stacks() {
    base_ = mmap(nullptr, kInitBytes + kProgramBytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base_ == MAP_FAILED) throw Error(std::string("sandbox: mmap: ") + strerror(errno));
    mprotect(base_, 4096, PROT_NONE);  // an overflow faults instead of writing past the mapping
  }
  ~Stacks() { munmap(base_, kInitBytes + kProgramBytes); }
  Stacks(const Stacks&) = delete;
  Stacks& operator=(const Stacks&) = delete;
  void* program_top() const { return static_cast<char*>(base_) + kProgramBytes; }
  void* init_top() const { return static_cast<char*>(base_) + kProgramBytes + kInitBytes; }

 private:
  void* base_;
};

SandboxResult run_sandboxed(const SandboxLimits& limits, const SandboxRun& run, bool probe_only) {
  const auto started = Clock::now();
  ChildPlan plan;
  plan.probe_only = probe_only;
  plan.drop_groups = geteuid() == 0;
  plan.root_options = "size=1m,nr_inodes=1024,mode=0755";
  plan.work_options = "size=" + std::to_string(limits.max_file_bytes) + ",nr_inodes=4096,mode=0755";
  plan.work_target = std::string(kRoot) + "/tmp";
  add_system_paths(plan);
  add_user_paths(plan, limits.read_only_paths);
  for (const SandboxFile& file : run.files) {
    if (file.name.empty() || file.name.find('/') != std::string::npos || file.name == "." ||
        file.name == "..")
      throw Error("sandbox: a file name must be a plain name, got \"" + file.name + "\"");
    plan.files.emplace_back("/tmp/" + file.name, &file);
  }
  if (!run.collect_file.empty()) plan.collect_path = "/tmp/" + run.collect_file;
  plan.collect_limit = limits.max_file_bytes;
  if (!probe_only && run.argv.empty()) throw Error("sandbox: nothing to run (empty argv)");
  for (const std::string& arg : run.argv) plan.argv.push_back(arg.c_str());
  plan.argv.push_back(nullptr);
  plan.env_storage = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
                      "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"};
  for (const std::string& entry : plan.env_storage) plan.envp.push_back(entry.c_str());
  plan.envp.push_back(nullptr);
  plan.cpu_seconds = static_cast<rlim_t>(std::max(1.0, std::ceil(limits.cpu_seconds)));
  plan.address_space = static_cast<rlim_t>(limits.memory_mb) << 20;
  plan.processes = static_cast<rlim_t>(limits.max_processes) + 1;  // init counts
  plan.file_bytes = static_cast<rlim_t>(limits.max_file_bytes);
  plan.seccomp = seccomp_filter();

  Pipe stdin_pipe = make_pipe(), stdout_pipe = make_pipe(), stderr_pipe = make_pipe();
  Pipe sync_pipe = make_pipe(), report_pipe = make_pipe();
  Pipe collect_pipe;
  if (!run.collect_file.empty()) collect_pipe = make_pipe();
  plan.stdin_read = stdin_pipe.read_end.get();
  plan.stdout_write = stdout_pipe.write_end.get();
  plan.stderr_write = stderr_pipe.write_end.get();
  plan.sync_read = sync_pipe.read_end.get();
  plan.report_write = report_pipe.write_end.get();
  plan.collect_write = collect_pipe.write_end.get();

  // Init shares our memory (CLONE_VM) instead of copying it: a fork of a
  // training process holding gigabytes costs up to a second. It runs on its
  // own stack, reads `plan` and writes nothing of ours; the stacks outlive it.
  Stacks stacks;
  plan.program_stack_top = stacks.program_top();
  const int flags = CLONE_VM | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS |
                    CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD | SIGCHLD;
  int pidfd_number = -1;
  pid_t clone_result = clone(init_entry, stacks.init_top(), flags, &plan, &pidfd_number);
  if (clone_result < 0) {
    throw Error(std::string("sandbox: cannot create namespaces (clone: ") + strerror(errno) +
                "); user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, "
                "user.max_user_namespaces, or an AppArmor restriction)");
  }
  const pid_t init = static_cast<pid_t>(clone_result);
  Descriptor pidfd(pidfd_number);
  stdin_pipe.read_end.reset();
  stdout_pipe.write_end.reset();
  stderr_pipe.write_end.reset();
  sync_pipe.read_end.reset();
  report_pipe.write_end.reset();
  collect_pipe.write_end.reset();

  auto kill_init = [&] { kill(init, SIGKILL); };  // the pid stays ours until we reap it
  try {
    const uid_t outside_uid = plan.drop_groups ? kNobody : geteuid();
    const gid_t outside_gid = plan.drop_groups ? kNobody : getegid();
    write_proc_file(init, "uid_map",
                    std::to_string(kInsideId) + " " + std::to_string(outside_uid) + " 1\n");
    if (!plan.drop_groups) write_proc_file(init, "setgroups", "deny");
    write_proc_file(init, "gid_map",
                    std::to_string(kInsideId) + " " + std::to_string(outside_gid) + " 1\n");
  } catch (...) {
    kill_init();
    waitpid(init, nullptr, 0);
    throw;
  }
  if (write(sync_pipe.write_end.get(), "g", 1) != 1) {
    kill_init();
    waitpid(init, nullptr, 0);
    throw Error(std::string("sandbox: cannot start the sandbox: ") + strerror(errno));
  }
  sync_pipe.write_end.reset();

  SandboxResult result;
  std::string report;
  fcntl(stdin_pipe.write_end.get(), F_SETFL, O_NONBLOCK);
  size_t stdin_written = 0;
  if (run.stdin_data.empty()) stdin_pipe.write_end.reset();
  bool init_exited = false, killed = false;
  Clock::time_point give_up = Clock::time_point::max();  // stop draining after a kill
  while (true) {
    std::vector<pollfd> fds;
    std::vector<int> which;  // 0 stdin, 1 stdout, 2 stderr, 3 report, 4 collect, 5 pidfd
    auto watch = [&](const Descriptor& d, short events, int tag) {
      if (d.get() < 0) return;
      fds.push_back({d.get(), events, 0});
      which.push_back(tag);
    };
    watch(stdin_pipe.write_end, POLLOUT, 0);
    watch(stdout_pipe.read_end, POLLIN, 1);
    watch(stderr_pipe.read_end, POLLIN, 2);
    watch(report_pipe.read_end, POLLIN, 3);
    watch(collect_pipe.read_end, POLLIN, 4);
    if (!init_exited) watch(pidfd, POLLIN, 5);
    if (fds.empty() || (init_exited && fds.size() == 1 && which[0] == 0)) break;

    auto now = Clock::now();
    if (init_exited && give_up == Clock::time_point::max()) give_up = now + std::chrono::seconds(5);
    if (!killed && !init_exited && now >= run.deadline) {
      kill_init();
      killed = true;
      result.outcome = SandboxOutcome::kTimedOut;
      give_up = now + std::chrono::seconds(5);
    }
    if (now >= give_up) break;
    auto until = killed || init_exited ? give_up : run.deadline;
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1;
    int ready = poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(wait_ms, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      switch (which[i]) {
        case 0: {
          ssize_t n = write(stdin_pipe.write_end.get(), run.stdin_data.data() + stdin_written,
                            run.stdin_data.size() - stdin_written);
          if (n > 0) stdin_written += static_cast<size_t>(n);
          if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
              stdin_written == run.stdin_data.size())
            stdin_pipe.write_end.reset();
          break;
        }
        case 5:
          init_exited = true;
          break;
        default: {
          Descriptor& source = which[i] == 1   ? stdout_pipe.read_end
                               : which[i] == 2 ? stderr_pipe.read_end
                               : which[i] == 3 ? report_pipe.read_end
                                               : collect_pipe.read_end;
          std::string& sink = which[i] == 1   ? result.stdout_data
                              : which[i] == 2 ? result.stderr_data
                              : which[i] == 3 ? report
                                              : result.collected;
          char buffer[65536];
          ssize_t n = read(source.get(), buffer, sizeof(buffer));
          if (n < 0 && (errno == EINTR || errno == EAGAIN)) break;
          if (n <= 0) {
            source.reset();
            break;
          }
          size_t cap = which[i] <= 2 ? static_cast<size_t>(limits.max_output_bytes)
                                     : static_cast<size_t>(limits.max_file_bytes) + 64;
          size_t room = cap - std::min(cap, sink.size());
          sink.append(buffer, std::min(room, static_cast<size_t>(n)));
          if (static_cast<size_t>(n) > room && !killed) {
            kill_init();
            killed = true;
            result.outcome = SandboxOutcome::kOutputLimit;
            give_up = Clock::now() + std::chrono::seconds(5);
          }
        }
      }
    }
  }
  if (!init_exited) kill_init();
  int init_status = 0;
  while (waitpid(init, &init_status, 0) < 0 && errno == EINTR) {
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();

  constexpr size_t kErrorHeader = 1 + sizeof(int) + sizeof(uint16_t);
  if (report.size() >= kErrorHeader && report[0] == kReportError) {
    int error = 0;
    uint16_t length = 0;
    memcpy(&error, report.data() + 1, sizeof(int));
    memcpy(&length, report.data() + 1 + sizeof(int), sizeof(uint16_t));
    throw Error("sandbox: cannot set up the sandbox: " + report.substr(kErrorHeader, length) +
                ": " + strerror(error));
  }
  if (killed) return result;
  if (report.size() == 1 + sizeof(int) && report[0] == kReportStatus) {
    int status = 0;
    memcpy(&status, report.data() + 1, sizeof(int));
    if (WIFSIGNALED(status)) {
      result.outcome = SandboxOutcome::kSignaled;
      result.signal = WTERMSIG(status);
    } else {
      result.outcome = SandboxOutcome::kExited;
      result.exit_code = WEXITSTATUS(status);
    }
    return result;
  }
  // Init died without a report: killed from outside (the OOM killer, say).
  result.outcome = SandboxOutcome::kSignaled;
  result.signal = WIFSIGNALED(init_status) ? WTERMSIG(init_status) : SIGKILL;
  return result;
}

}  // namespace

std::string SandboxResult::describe() const {
  switch (outcome) {
    case SandboxOutcome::kExited:
      return "exit status " + std::to_string(exit_code);
    case SandboxOutcome::kSignaled:
      return "signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    case SandboxOutcome::kTimedOut:
      return "timed out";
    case SandboxOutcome::kOutputLimit:
      return "output limit";
  }
  return "?";
}

Sandbox::Sandbox(SandboxLimits limits) : limits_(std::move(limits)) {
  // Feeding stdin to a program that has exited must give EPIPE, not kill us.
  signal(SIGPIPE, SIG_IGN);
  auto fail = [](std::string_view field, std::string_view message) {
    throw_config_error("sandbox: " + std::string(field) + ": " + std::string(message));
  };
  if (limits_.cpu_seconds <= 0) fail("cpu_seconds", "must be > 0");
  if (limits_.memory_mb < 16) fail("memory_mb", "must be >= 16");
  if (limits_.max_processes < 1) fail("max_processes", "must be >= 1");
  if (limits_.max_file_bytes < 4096) fail("max_file_bytes", "must be >= 4096");
  if (limits_.max_output_bytes < 1) fail("max_output_bytes", "must be >= 1");
  for (const std::string& path : limits_.read_only_paths) {
    std::filesystem::path p(path);
    if (!p.is_absolute() || p.lexically_normal() != p || path == "/")
      fail("read_only_paths", "\"" + path + "\" must be a normalised absolute path other than /");
    if (path == "/tmp" || path.starts_with("/tmp/"))
      fail("read_only_paths", "\"" + path + "\" is under /tmp, the sandbox's own folder");
    if (!std::filesystem::exists(p)) fail("read_only_paths", "\"" + path + "\" does not exist");
  }
}

SandboxResult Sandbox::run(const SandboxRun& run) const {
  return run_sandboxed(limits_, run, /*probe_only=*/false);
}

std::string Sandbox::unavailable_reason() {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    try {
      SandboxRun probe;
      probe.deadline = Clock::now() + std::chrono::seconds(10);
      SandboxResult result = run_sandboxed(SandboxLimits{}, probe, /*probe_only=*/true);
      if (!result.succeeded()) reason = "sandbox: the set-up probe ended with " + result.describe();
    } catch (const std::exception& e) {
      reason = e.what();
    }
  });
  return reason;
}

}  // namespace r1kit
