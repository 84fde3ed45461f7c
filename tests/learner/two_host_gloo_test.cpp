// Data parallel across hosts: two network namespaces joined by a veth pair
// stand in for two hosts; rank 0 and rank 1 run `r1kit train` one in each,
// with torchrun's variables and MASTER_ADDR the first one's address, and must
// reach the parameters one process reaches with the same global batch. Covers
// GLOO_SOCKET_IFNAME and both automatic choices of where Gloo listens, and the
// choice itself (choose_gloo_endpoints). The namespace tests need root and
// skip without it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "common/safetensors.h"
#include "learner/distributed.h"
#include "tests/learner/learner_test_util.h"
#include "tests/support/network_namespaces.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for one scope and puts the old value back.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnvironment() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(GlooEndpoints, GlooSocketIfnameListsOneDevicePerInterface) {
  ScopedEnvironment listed("GLOO_SOCKET_IFNAME", "lo,lo");
  auto endpoints = choose_gloo_endpoints("10.201.0.1", 29500);
  ASSERT_EQ(endpoints.size(), 2u);
  for (const auto& endpoint : endpoints) {
    EXPECT_EQ(endpoint.interface, "lo");
    EXPECT_NE(endpoint.reason.find("GLOO_SOCKET_IFNAME"), std::string::npos) << endpoint.reason;
  }
}

TEST(GlooEndpoints, MissingInterfaceIsAOneLineUsageErrorNamingTheVariable) {
  for (const char* list : {"r1kit-missing", "lo,r1kit-missing", "lo,"}) {
    ScopedEnvironment listed("GLOO_SOCKET_IFNAME", list);
    try {
      choose_gloo_endpoints("10.201.0.1", 29500);
      ADD_FAILURE() << list << " was accepted";
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_EQ(e.kind(), ErrorKind::kUsage);
      EXPECT_NE(message.find(std::string("GLOO_SOCKET_IFNAME=\"") + list + "\""), std::string::npos)
          << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      if (std::string(list) != "lo,")
        EXPECT_NE(message.find("\"r1kit-missing\""), std::string::npos) << message;
    }
  }
}

TEST(GlooEndpoints, LoopbackMasterMeansEveryRankIsOnThisHost) {
  ScopedEnvironment unset("GLOO_SOCKET_IFNAME", nullptr);
  for (const char* master : {"127.0.0.1", "localhost"}) {
    auto endpoints = choose_gloo_endpoints(master, 29500);
    ASSERT_EQ(endpoints.size(), 1u);
    EXPECT_EQ(endpoints[0].interface, "");
    EXPECT_EQ(endpoints[0].address, "127.0.0.1") << master;
  }
}

// The rank's command fails at once, on one line, before any rendezvous.
TEST(GlooEndpoints, TrainWithAMissingInterfaceStopsWithOneLine) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  fs::path recipe = root / "recipe.json";
  std::ofstream(recipe) << testing::tiny_grpo_recipe(model, root / "run").dump(2);
  std::string command =
      "env GLOO_SOCKET_IFNAME=r1kit-missing RANK=1 WORLD_SIZE=2 "
      "MASTER_ADDR=10.201.0.1 MASTER_PORT=29511 " +
      std::string(R1KIT_BINARY) + " train " + recipe.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  int status = pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), static_cast<int>(ErrorKind::kUsage)) << output;
  std::string error_line;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("error") != std::string::npos) {
      EXPECT_TRUE(error_line.empty()) << output;
      error_line = line;
    }
  }
  EXPECT_NE(error_line.find("GLOO_SOCKET_IFNAME=\"r1kit-missing\""), std::string::npos) << output;
  EXPECT_EQ(output.find("Exception raised from"), std::string::npos) << output;
}

std::map<std::string, at::Tensor> final_weights(const fs::path& run) {
  auto contents = read_safetensors(run / "final" / "model.safetensors");
  std::map<std::string, at::Tensor> copied;
  for (auto& [name, tensor] : contents.tensors) copied[name] = tensor.clone();
  return copied;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

pid_t start_shell(const std::string& command) {
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

int exit_code_of(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One tiny model, the recipe every run trains, and what one process reaches
// with it; made once for the suite, when the first namespace test runs.
struct Reference {
  testing::TempFolder root{"two-host-reference"};
  fs::path model;
  nlohmann::json recipe;
  std::map<std::string, at::Tensor> initial;
  std::map<std::string, at::Tensor> single;
  std::string failure;  // why the single run failed, if it did
};

const Reference& reference() {
  static const std::unique_ptr<Reference> made = [] {
    auto reference = std::make_unique<Reference>();
    reference->model = testing::write_tiny_policy(reference->root / "model");
    reference->recipe = testing::tiny_grpo_recipe(reference->model, reference->root / "one");
    reference->recipe["trainer"]["max_steps"] = 3;
    reference->recipe["trainer"]["eval_samples"] = 0;
    reference->recipe["grpo"]["beta"] = 0.01;
    fs::path recipe = reference->root / "one.json";
    std::ofstream(recipe) << reference->recipe.dump(2);
    fs::path log = reference->root / "one.log";
    std::string command = "env -u RANK -u WORLD_SIZE OMP_NUM_THREADS=1 " +
                          std::string(R1KIT_BINARY) + " train " + recipe.string() + " > " +
                          log.string() + " 2>&1";
    if (std::system(command.c_str()) != 0) {
      reference->failure = read_text(log);
      return reference;
    }
    reference->initial = read_safetensors(reference->model / "model.safetensors").tensors;
    reference->single = final_weights(reference->root / "one");
    return reference;
  }();
  return *made;
}

// How each host picks where Gloo listens.
enum class Choice {
  kGlooSocketIfname,    // GLOO_SOCKET_IFNAME names its veth end
  kHostNameIsLoopback,  // automatic; the host name resolves to 127.0.1.1
  kHostNameIsThisHost,  // automatic; the host name resolves to its veth address
};

class TwoHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why_not;
    hosts_ = testing::NetworkNamespacePair::create(&why_not);
    if (!hosts_) GTEST_SKIP() << "no network namespaces for two hosts: " << why_not;
  }

  // Runs rank 0 in the first namespace and rank 1 in the second and checks
  // their final parameters against the single process's; returns rank 1's log.
  std::string expect_two_hosts_equal_one(Choice choice) {
    for (int host = 0; host < 2; ++host) {
      std::string why_not;
      bool mapped = true;
      if (choice == Choice::kHostNameIsLoopback)
        mapped = hosts_->map_host_name(host, "127.0.1.1", &why_not);
      if (choice == Choice::kHostNameIsThisHost)
        mapped = hosts_->map_host_name(host, hosts_->address(host), &why_not);
      if (!mapped) {
        skipped_ = "cannot give each namespace its own hosts file: " + why_not;
        return "";
      }
    }
    const Reference& one = reference();
    EXPECT_EQ(one.failure, "") << "the single-process run failed";
    if (!one.failure.empty()) return "";
    const testing::TempFolder root;
    nlohmann::json recipe = one.recipe;
    recipe["output_dir"] = (root / "two").string();
    fs::path recipe_path = root / "two.json";
    std::ofstream(recipe_path) << recipe.dump(2);

    pid_t ranks[2];
    for (int rank = 0; rank < 2; ++rank) {
      std::string environment =
          "env -u GLOO_SOCKET_IFNAME RANK=" + std::to_string(rank) +
          " WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=" + hosts_->address(0) +
          " MASTER_PORT=29511 OMP_NUM_THREADS=1 ";
      if (choice == Choice::kGlooSocketIfname)
        environment += "GLOO_SOCKET_IFNAME=" + hosts_->interface(rank) + " ";
      fs::path log = root / ("rank" + std::to_string(rank) + ".log");
      ranks[rank] =
          start_shell("timeout -k 5 60 " + hosts_->inside(rank) + environment + R1KIT_BINARY +
                      " train " + recipe_path.string() + " > " + log.string() + " 2>&1");
    }
    int exit_codes[2] = {exit_code_of(ranks[0]), exit_code_of(ranks[1])};
    std::string logs[2] = {read_text(root / "rank0.log"), read_text(root / "rank1.log")};
    for (int rank = 0; rank < 2; ++rank)
      EXPECT_EQ(exit_codes[rank], 0) << "rank " << rank << ":\n" << logs[rank];
    if (exit_codes[0] != 0 || exit_codes[1] != 0) return logs[1];

    auto pair = final_weights(root / "two");
    EXPECT_EQ(one.single.size(), pair.size());
    double moved = 0;
    for (const auto& [name, tensor] : one.single) {
      if (!pair.count(name)) {
        ADD_FAILURE() << name << " is missing from the two hosts' parameters";
        continue;
      }
      EXPECT_TRUE(at::allclose(tensor, pair.at(name), /*rtol=*/0, /*atol=*/1e-5))
          << name << " differs by " << (tensor - pair.at(name)).abs().max().item<double>();
      moved = std::max(moved, (tensor - one.initial.at(name)).abs().max().item<double>());
    }
    EXPECT_GT(moved, 1e-4) << "the updates did nothing; the comparison would be empty";
    return logs[1];
  }

  std::unique_ptr<testing::NetworkNamespacePair> hosts_;
  std::string skipped_;  // set when a variant cannot be set up here
};

TEST_F(TwoHosts, RanksOnTheInterfacesGlooSocketIfnameNamesEqualOneProcess) {
  std::string log = expect_two_hosts_equal_one(Choice::kGlooSocketIfname);
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_NE(log.find("Gloo listens on " + hosts_->interface(1) + ", listed in GLOO_SOCKET_IFNAME"),
            std::string::npos)
      << log;
}

// A host name that resolves to loopback (Debian's 127.0.1.1) cannot reach the
// other host: Gloo listens on the address the route to MASTER_ADDR leaves from.
TEST_F(TwoHosts, LoopbackHostNameListensOnTheRouteToTheMaster) {
  std::string log = expect_two_hosts_equal_one(Choice::kHostNameIsLoopback);
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_NE(log.find("Gloo listens on " + hosts_->address(1) +
                     ", the address this host reaches MASTER_ADDR " + hosts_->address(0)),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("resolves to loopback"), std::string::npos) << log;
}

// A host name that resolves to one of the host's own addresses is torch's
// default: Gloo listens there.
TEST_F(TwoHosts, HostNameOfThisHostIsWhereGlooListens) {
  std::string log = expect_two_hosts_equal_one(Choice::kHostNameIsThisHost);
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_NE(log.find("Gloo listens on " + hosts_->address(1) + ", the address of the host name"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace r1kit
