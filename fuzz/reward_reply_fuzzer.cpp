// Fuzzes the replies of out-of-process rewards (rewards/reward_protocol.h): a
// subprocess reward's reply line and an HTTP reward's {"results": [...]} body,
// read the way rewards/subprocess_reward.cpp and rewards/http_reward.cpp read
// them. parse_reward_reply rejects a bad reply with std::runtime_error, which
// those callers turn into an error of the reward; anything else is a crash.
#include <stdexcept>

#include "fuzz/fuzz_support.h"
#include "rewards/reward_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  const nlohmann::json reply = nlohmann::json::parse(fuzz::as_text(data, size), nullptr, false);
  if (reply.is_discarded()) return 0;
  auto parse = [](const nlohmann::json& value) {
    try {
      RewardResult result = parse_reward_reply(value);
      (void)result.info.dump();
    } catch (const std::runtime_error&) {
    }
  };
  parse(reply);
  if (reply.is_object()) {
    auto list = reply.find("results");
    if (list != reply.end() && list->is_array()) {
      for (const nlohmann::json& item : *list) parse(item);
    }
  }
  Sample sample;
  sample.metadata = reply;
  (void)sample_to_json(sample).dump();
  return 0;
}
