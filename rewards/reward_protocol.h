// The JSON that out-of-process rewards (subprocess, http) speak: a sample as an
// object, and a reply {"reward": x | null, "components": {...}, "info": ...};
// the subprocess protocol adds an "id" that the reply echoes. docs/reward-protocols.md
// describes both protocols. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "rewards/reward.h"

namespace r1kit {

// {"prompt", "completion", "completion_ids", "reference", "metadata"}.
nlohmann::json sample_to_json(const Sample& sample);

// Reads one reply. Throws std::runtime_error naming what is wrong when it is
// not an object with a numeric or null "reward" and numeric components.
RewardResult parse_reward_reply(const nlohmann::json& reply);

// Throws std::runtime_error when `reply` (an object) does not carry "id":
// `request_id`: a reply without one, or with another request's, means the
// program and r1kit disagree on which sample a line belongs to.
void check_reply_id(const nlohmann::json& reply, int64_t request_id);

}  // namespace r1kit
