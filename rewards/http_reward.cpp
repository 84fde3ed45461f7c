// `http`: a reward served over HTTP. Samples are POSTed as JSON in batches:
//   request: {"samples": [<sample>, ...]}      (see rewards/reward_protocol.h)
//   reply:   {"results": [{"reward": x, "components": {...}, "info": ...}, ...]}
// one result per sample, in order. An empty batch is the start-up health check,
// so an unreachable server is a clear error before training begins. Failed
// requests are retried with exponential backoff within the call's deadline; a
// call that ends on a non-2xx status, a refused connection or a reply that is
// not JSON is an error (the status and the start of the body in its message),
// one that ends on the deadline a timeout. docs/reward-protocols.md has the details.
// Thread-safe: each request uses its own client. Built with cpp-httplib.
#include <chrono>
#include <thread>

#include "common/config.h"
#include "common/error.h"
#include "rewards/reward.h"
#include "rewards/reward_protocol.h"

#ifdef R1KIT_WITH_HTTPLIB
#include <httplib.h>
#endif

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBodyShownBytes = 200;  // of an error reply's body, quoted in the message

// Why a POST failed: the server was too slow (a timeout) or said no (an error).
enum class PostFailure { kNone, kTimeout, kError };

struct HttpOptions {
  std::string url;                // http://host:port/path; required
  int64_t batch_size = 64;        // samples per POST
  int64_t retries = 3;            // extra attempts after a failed request
  double backoff_seconds = 0.5;   // wait before the first retry, doubled each time
  double timeout_seconds = 30.0;  // deadline of a call made without one (outside RewardSet)
  bool check_at_start = true;     // POST an empty batch at start-up; fail early when unreachable

  void visit(ConfigVisitor& v) {
    v.field("url", url, {.required = true});
    v.field("batch_size", batch_size, {.min = 1.0});
    v.field("retries", retries, {.min = 0.0, .max = 20.0});
    v.field("backoff_seconds", backoff_seconds, {.min = 0.0});
    v.field("timeout_seconds", timeout_seconds, {.min = 0.0, .min_exclusive = true});
    v.field("check_at_start", check_at_start);
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
      v.fail("url", "expected http://host:port/path, got \"" + url + "\"");
    }
  }
};

#ifdef R1KIT_WITH_HTTPLIB

class HttpReward : public RewardFn {
 public:
  HttpReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<HttpOptions>(options, source)) {
    size_t scheme_end = options_.url.find("://") + 3;
    size_t path_start = options_.url.find('/', scheme_end);
    origin_ = options_.url.substr(0, path_start);
    path_ = path_start == std::string::npos ? "/" : options_.url.substr(path_start);
    if (options_.check_at_start) {
      std::string problem;
      Deadline deadline = Clock::now() + std::chrono::seconds(10);
      if (post_once(nlohmann::json{{"samples", nlohmann::json::array()}}, deadline, nullptr,
                    &problem) != PostFailure::kNone) {
        throw_io_error(source + ": http reward: " + options_.url + " is not answering (" + problem +
                       "); start the reward server first");
      }
    }
  }

  RewardResult score(const Sample& sample) const override {
    return score_until(sample, default_deadline());
  }

  RewardResult score_until(const Sample& sample, Deadline deadline) const override {
    return score_batch({sample}, deadline).at(0);
  }

  bool prefers_batches() const override { return true; }

  std::vector<RewardResult> score_batch(const std::vector<Sample>& samples,
                                        Deadline deadline) const override {
    std::vector<RewardResult> results;
    results.reserve(samples.size());
    for (size_t start = 0; start < samples.size();
         start += static_cast<size_t>(options_.batch_size)) {
      size_t end = std::min(samples.size(), start + static_cast<size_t>(options_.batch_size));
      nlohmann::json body{{"samples", nlohmann::json::array()}};
      for (size_t i = start; i < end; ++i) body["samples"].push_back(sample_to_json(samples[i]));
      nlohmann::json reply = post_with_retries(body, deadline);
      auto list = reply.find("results");
      if (!reply.is_object() || list == reply.end() || !list->is_array() ||
          list->size() != end - start) {
        throw Error("http reward: " + options_.url + " replied without a \"results\" list of " +
                    std::to_string(end - start) + " entries");
      }
      for (const nlohmann::json& item : *list) {
        try {
          results.push_back(parse_reward_reply(item));
        } catch (const std::exception& e) {
          throw Error("http reward: " + options_.url + ": bad result " + item.dump() + ": " +
                      e.what());
        }
      }
    }
    return results;
  }

 private:
  Deadline default_deadline() const {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(options_.timeout_seconds));
  }

  // One POST; returns kNone with `*reply` filled, or the kind of failure with `*problem` set.
  PostFailure post_once(const nlohmann::json& body, Deadline deadline, nlohmann::json* reply,
                        std::string* problem) const {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      *problem = "deadline passed";
      return PostFailure::kTimeout;
    }
    httplib::Client client(origin_);
    client.set_connection_timeout(left.count() / 1000000, left.count() % 1000000);
    client.set_read_timeout(left.count() / 1000000, left.count() % 1000000);
    client.set_write_timeout(left.count() / 1000000, left.count() % 1000000);
    httplib::Result response = client.Post(path_.c_str(), body.dump(), "application/json");
    if (!response) {
      httplib::Error error = response.error();
      *problem = httplib::to_string(error);
      // httplib's timeouts end at the deadline; a reset connection fails well before it.
      bool slow = Clock::now() + std::chrono::milliseconds(50) >= deadline;
      return slow ? PostFailure::kTimeout : PostFailure::kError;
    }
    if (response->status < 200 || response->status >= 300) {
      *problem = "HTTP status " + std::to_string(response->status);
      std::string shown = response->body.substr(0, kBodyShownBytes);
      for (char& c : shown) c = (c == '\n' || c == '\r') ? ' ' : c;
      if (!shown.empty()) *problem += ": " + shown;
      return PostFailure::kError;
    }
    nlohmann::json parsed =
        nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      *problem = "the reply is not JSON";
      return PostFailure::kError;
    }
    if (reply) *reply = std::move(parsed);
    return PostFailure::kNone;
  }

  // The reply of the first POST that succeeds. The last failure decides what
  // is thrown: RewardTimeout when the server was too slow, Error when it
  // answered with an error status or could not be reached.
  nlohmann::json post_with_retries(const nlohmann::json& body, Deadline deadline) const {
    std::string problem;
    double backoff = options_.backoff_seconds;
    PostFailure failure = PostFailure::kNone;
    int64_t attempt = 0;
    for (;; ++attempt) {
      nlohmann::json reply;
      failure = post_once(body, deadline, &reply, &problem);
      if (failure == PostFailure::kNone) return reply;
      auto wait =
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(backoff));
      if (attempt >= options_.retries || Clock::now() + wait >= deadline) break;
      std::this_thread::sleep_for(wait);
      backoff *= 2.0;
    }
    std::string message = "http reward: " + options_.url + ": " + problem + " after " +
                          std::to_string(attempt + 1) + " attempt" + (attempt > 0 ? "s" : "");
    if (attempt < options_.retries) message += " (no time left to retry)";
    if (failure == PostFailure::kTimeout) throw RewardTimeout(message);
    throw Error(message);
  }

  HttpOptions options_;
  std::string origin_;  // scheme://host:port
  std::string path_;
};

#else

class HttpReward : public RewardFn {
 public:
  HttpReward(const nlohmann::json& options, const std::string& source) {
    read_config<HttpOptions>(options, source);
    throw_config_error(source +
                       ": the http reward needs cpp-httplib, which this build of r1kit lacks "
                       "(install libcpp-httplib-dev and rebuild)");
  }
  RewardResult score(const Sample&) const override { return {}; }
};

#endif

}  // namespace

REGISTER_REWARD("http", HttpReward);

}  // namespace r1kit
