// Two network namespaces joined by a veth pair (10.201.0.1/24 and
// 10.201.0.2/24), standing in for two hosts in tests of multi-host runs.
// Created with `ip` (needs root), removed with everything they hold when the
// object goes out of scope. One object per test; names are unique per process.
#pragma once

#include <memory>
#include <string>

namespace r1kit::testing {

class NetworkNamespacePair {
 public:
  // The pair, or null with `why_not` saying which command failed and how
  // (not root, no `ip`, no CAP_SYS_ADMIN, no veth): the caller skips.
  static std::unique_ptr<NetworkNamespacePair> create(std::string* why_not);
  // Deletes both namespaces (their veth ends go with them) and the hosts files.
  ~NetworkNamespacePair();
  NetworkNamespacePair(const NetworkNamespacePair&) = delete;
  NetworkNamespacePair& operator=(const NetworkNamespacePair&) = delete;

  // Host 0 or 1: its namespace, its end of the veth pair, and that end's address.
  const std::string& name(int host) const { return names_[host]; }
  const std::string& interface(int host) const { return interfaces_[host]; }
  std::string address(int host) const { return host == 0 ? "10.201.0.1" : "10.201.0.2"; }

  // Makes this machine's host name resolve to `address` inside namespace
  // `host` (an /etc/netns/<name>/hosts file, which `ip netns exec` mounts over
  // /etc/hosts); false with `why_not` set when /etc/netns is not writable.
  bool map_host_name(int host, const std::string& address, std::string* why_not) const;

  // The prefix that runs a command inside namespace `host`: "ip netns exec <name> ".
  std::string inside(int host) const { return "ip netns exec " + names_[host] + " "; }

 private:
  NetworkNamespacePair();

  std::string names_[2];
  std::string interfaces_[2];
};

}  // namespace r1kit::testing
