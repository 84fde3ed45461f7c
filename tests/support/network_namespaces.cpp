#include "tests/support/network_namespaces.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

namespace r1kit::testing {
namespace {

namespace fs = std::filesystem;

// Runs `command` through the shell; "" on success, else its output and status.
std::string run_quietly(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return "cannot start a shell for: " + command;
  std::string output;
  std::array<char, 1024> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  int status = pclose(pipe);
  if (status == 0) return "";
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return "`" + command + "` failed (status " + std::to_string(status) + "): " + output;
}

fs::path hosts_folder(const std::string& name) { return fs::path("/etc/netns") / name; }

}  // namespace

NetworkNamespacePair::NetworkNamespacePair() {
  static std::atomic<int> created{0};
  std::string unique = std::to_string(getpid()) + "x" + std::to_string(created++);
  for (int host = 0; host < 2; ++host) {
    std::string side = host == 0 ? "a" : "b";
    names_[host] = "r1kit-" + unique + "-" + side;
    interfaces_[host] = "r1k" + unique + side;  // at most 15 characters (IFNAMSIZ)
  }
}

std::unique_ptr<NetworkNamespacePair> NetworkNamespacePair::create(std::string* why_not) {
  if (geteuid() != 0) {
    *why_not = "creating network namespaces (ip netns add) needs root";
    return nullptr;
  }
  std::unique_ptr<NetworkNamespacePair> pair(new NetworkNamespacePair());
  const auto& names = pair->names_;
  const auto& interfaces = pair->interfaces_;
  std::vector<std::string> commands = {
      "ip netns add " + names[0],
      "ip netns add " + names[1],
      "ip link add " + interfaces[0] + " type veth peer name " + interfaces[1],
  };
  for (int host = 0; host < 2; ++host) {
    std::string in = "ip -n " + names[host] + " ";
    commands.push_back("ip link set " + interfaces[host] + " netns " + names[host]);
    commands.push_back(in + "addr add " + pair->address(host) + "/24 dev " + interfaces[host]);
    commands.push_back(in + "link set lo up");
    commands.push_back(in + "link set " + interfaces[host] + " up");
  }
  for (const std::string& command : commands) {
    std::string failure = run_quietly(command);
    if (!failure.empty()) {
      *why_not = failure;
      return nullptr;  // the destructor removes what was made
    }
  }
  return pair;
}

NetworkNamespacePair::~NetworkNamespacePair() {
  run_quietly("ip link delete " + interfaces_[0]);  // only left when it never moved
  for (const std::string& name : names_) {
    run_quietly("ip netns delete " + name);
    std::error_code ignored;
    fs::remove_all(hosts_folder(name), ignored);
  }
  std::error_code ignored;
  fs::remove("/etc/netns", ignored);  // only when empty: others may use it
}

bool NetworkNamespacePair::map_host_name(int host, const std::string& address,
                                         std::string* why_not) const {
  char host_name[HOST_NAME_MAX + 1] = {0};
  gethostname(host_name, sizeof(host_name) - 1);
  fs::path folder = hosts_folder(names_[host]);
  std::error_code error;
  // A few tries: another pair's destructor may remove an empty /etc/netns
  // between creating it and creating the folder in it.
  for (int attempt = 0; attempt < 3; ++attempt) {
    fs::create_directories(folder, error);
    std::ofstream hosts(folder / "hosts");
    hosts << "127.0.0.1 localhost\n" << address << " " << host_name << "\n";
    hosts.close();
    if (!error && hosts) return true;
  }
  *why_not = "cannot write " + (folder / "hosts").string() +
             (error ? ": " + error.message() : std::string());
  return false;
}

}  // namespace r1kit::testing
