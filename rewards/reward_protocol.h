// The JSON that out-of-process rewards (subprocess, http) speak: a sample as an
// object, and a reply {"reward": x | null, "components": {...}, "info": ...}.
// Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "rewards/reward.h"

namespace r1kit {

// {"prompt", "completion", "completion_ids", "reference", "metadata"}.
nlohmann::json sample_to_json(const Sample& sample);

// Reads one reply. Throws std::runtime_error naming what is wrong when it is
// not an object with a numeric or null "reward" and numeric components.
RewardResult parse_reward_reply(const nlohmann::json& reply);

}  // namespace r1kit
