// The http reward against a cpp-httplib server on 127.0.0.1 started here:
// batching, start-up check, a server that goes away, one that is too slow;
// in a build without cpp-httplib, the error that says so.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/error.h"
#include "common/thread_pool.h"
#include "rewards/reward.h"
#include "rewards/reward_set.h"

#ifdef R1KIT_WITH_HTTPLIB
#include <httplib.h>

namespace r1kit {
namespace {

// Rewards each sample with its completion's length; counts the POSTs.
class LengthServer {
 public:
  explicit LengthServer(int delay_ms = 0) {
    server_.Post(
        "/score", [this, delay_ms](const httplib::Request& request, httplib::Response& response) {
          ++posts_;
          if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
          nlohmann::json body = nlohmann::json::parse(request.body);
          nlohmann::json results = nlohmann::json::array();
          for (const auto& sample : body["samples"]) {
            double length = static_cast<double>(sample["completion"].get<std::string>().size());
            results.push_back({{"reward", length}, {"components", {{"twice", 2 * length}}}});
          }
          response.set_content(nlohmann::json{{"results", results}}.dump(), "application/json");
        });
    server_.Post("/broken", [](const httplib::Request&, httplib::Response& response) {
      response.status = 500;
    });
    server_.Post("/down", [](const httplib::Request&, httplib::Response& response) {
      response.status = 503;
      response.set_content("database down\nretry later", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LengthServer() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int posts() const { return posts_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> posts_{0};
};

std::vector<Sample> samples(size_t n) {
  std::vector<Sample> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Sample{.completion = std::string(i, 'x')});
  return out;
}

RewardSpec http_spec(const std::string& url, double timeout_seconds = 5.0) {
  RewardSpec spec;
  spec.name = "http";
  spec.options = {{"url", url}, {"batch_size", 3}, {"retries", 1}, {"backoff_seconds", 0.01}};
  spec.timeout_seconds = timeout_seconds;
  spec.fallback = -1.0;
  return spec;
}

TEST(HttpReward, ScoresInBatches) {
  LengthServer server;
  ThreadPool pool(2);
  RewardSet set({http_spec(server.url("/score"))}, "test");
  int after_check = server.posts();
  EXPECT_EQ(after_check, 1);  // the start-up health check
  BatchScores scores = set.score(samples(7), pool);
  EXPECT_EQ(server.posts() - after_check, 3);  // 3 + 3 + 1
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_DOUBLE_EQ(scores.totals[i], static_cast<double>(i));
    EXPECT_DOUBLE_EQ(scores.components[i][0].at("twice"), 2.0 * i);
  }
  EXPECT_EQ(scores.errors[0], 0);
}

TEST(HttpReward, UnreachableServerIsAClearStartUpError) {
  std::string url;
  {
    LengthServer gone;
    url = gone.url("/score");
  }
  try {
    make_reward("http", {{"url", url}}, "recipe.json: rewards[0].options");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("is not answering"), std::string::npos) << e.what();
  }
}

TEST(HttpReward, ServerGoingDownCountsErrorsAndLosesNoSample) {
  auto server = std::make_unique<LengthServer>();
  ThreadPool pool(2);
  RewardSet set({http_spec(server->url("/score"))}, "test");
  server.reset();
  BatchScores scores = set.score(samples(5), pool);
  ASSERT_EQ(scores.totals.size(), 5u);
  EXPECT_EQ(scores.errors[0], 5);
  for (double total : scores.totals) EXPECT_DOUBLE_EQ(total, -1.0);
  EXPECT_DOUBLE_EQ(scores.metrics().at("reward/http/errors"), 5.0);
}

TEST(HttpReward, ServerErrorStatusIsAnError) {
  LengthServer server;
  auto reward = make_reward(
      "http", {{"url", server.url("/broken")}, {"check_at_start", false}, {"retries", 0}}, "t");
  try {
    reward->score(Sample{.completion = "x"});
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP status 500"), std::string::npos) << e.what();
  }
}

// An error status is the server's answer, not slowness: counted as an error
// quoting the status and body, even when the deadline leaves no time to retry.
TEST(HttpReward, ErrorStatusIsCountedAsAnErrorWithTheBody) {
  LengthServer server;
  ThreadPool pool(2);
  RewardSpec spec = http_spec(server.url("/down"), 0.3);
  spec.options["check_at_start"] = false;
  spec.options["retries"] = 3;
  spec.options["backoff_seconds"] = 0.5;
  RewardSet set({spec}, "test");
  BatchScores scores = set.score(samples(2), pool);
  EXPECT_EQ(scores.errors[0], 2);
  EXPECT_EQ(scores.timeouts[0], 0);
  const std::string why = scores.info[0][0].value("error", "");
  EXPECT_NE(why.find("HTTP status 503: database down retry later"), std::string::npos)
      << scores.info[0][0].dump();
}

TEST(HttpReward, SlowServerTimesOut) {
  LengthServer server(/*delay_ms=*/1500);
  ThreadPool pool(2);
  RewardSpec spec = http_spec(server.url("/score"), 0.3);
  spec.options["check_at_start"] = false;
  RewardSet set({spec}, "test");
  auto start = std::chrono::steady_clock::now();
  BatchScores scores = set.score(samples(2), pool);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.4);
  EXPECT_EQ(scores.timeouts[0], 2);
  EXPECT_EQ(scores.errors[0], 0);
  for (double total : scores.totals) EXPECT_DOUBLE_EQ(total, -1.0);
}

}  // namespace
}  // namespace r1kit

#else

namespace r1kit {
namespace {

// A build without cpp-httplib still knows the reward and says at start-up,
// as a config error at the recipe's key, what the build lacks.
TEST(HttpReward, WithoutCppHttplibIsAConfigErrorSayingSo) {
  try {
    make_reward("http", {{"url", "http://127.0.0.1:9/score"}}, "recipe.json: rewards[0].options");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find(
                  "recipe.json: rewards[0].options: the http reward needs cpp-httplib"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit

#endif
