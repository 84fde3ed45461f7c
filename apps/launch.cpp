// `r1kit launch --nproc N -- r1kit train recipe.json`: starts N local ranks with
// torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT), waits for them, and stops the others when one
// fails. The exit code is the first failing rank's, or 0.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "apps/subcommand.h"
#include "common/error.h"
#include "common/logging.h"

namespace r1kit::apps {
namespace {

struct LaunchArguments {
  int nproc = 2;
  int master_port = 0;
  std::vector<std::string> command;
};

// A port the kernel reports free right now (bind to 0, read it back, close).
int free_port() {
  int socket_fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (socket_fd < 0 ||
      bind(socket_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      getsockname(socket_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (socket_fd >= 0) close(socket_fd);
    throw_io_error("launch: cannot find a free port on 127.0.0.1");
  }
  int port = ntohs(address.sin_port);
  close(socket_fd);
  return port;
}

int run_launch(const LaunchArguments& args) {
  if (args.command.empty())
    throw_usage_error(
        "launch: give the command after --, e.g. r1kit launch --nproc 2 -- r1kit train x.json");
  if (args.nproc < 1) throw_usage_error("launch: --nproc must be >= 1");
  const int port = args.master_port > 0 ? args.master_port : free_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads =
      std::to_string(std::max(1u, cores / static_cast<unsigned>(args.nproc)));
  std::vector<pid_t> children;
  for (int rank = 0; rank < args.nproc; ++rank) {
    pid_t pid = fork();
    if (pid < 0) throw_io_error("launch: fork failed");
    if (pid == 0) {
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      setenv("OMP_NUM_THREADS", threads.c_str(), 0);
      std::vector<char*> argv;
      for (const auto& word : args.command) argv.push_back(const_cast<char*>(word.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      std::cerr << "r1kit launch: cannot run " << args.command[0] << "\n";
      _exit(127);
    }
    children.push_back(pid);
  }
  int exit_code = 0;
  size_t running = children.size();
  while (running > 0) {
    int status = 0;
    pid_t pid = wait(&status);
    if (pid < 0) break;
    --running;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && exit_code == 0) {
      exit_code = code;
      auto rank = std::find(children.begin(), children.end(), pid) - children.begin();
      log_error() << "rank " << rank << " exited with " << code << "; stopping the others";
      for (pid_t other : children) {
        if (other != pid) kill(other, SIGTERM);
      }
    }
  }
  return exit_code;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<LaunchArguments>();
  app.add_option("--nproc", args->nproc, "local ranks to start")->capture_default_str();
  app.add_option("--master-port", args->master_port,
                 "rendezvous port on 127.0.0.1; 0 = a free one");
  app.add_option("command", args->command, "the command every rank runs (after --)")->required();
  app.positionals_at_end();
  return [args] { return run_launch(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("launch", "start N local ranks of a command (torchrun's environment variables)",
                    setup);

}  // namespace r1kit::apps
