// A reward function: receives one Sample (the prompt, the completion as text
// and token ids, the task's reference answer and metadata) and returns a
// RewardResult (a value or "not applicable", named components, free-form info).
// Implementations must be thread-safe: RewardSet scores samples concurrently on
// a pool, calling score() on the same object from many threads.
//
//   class LengthReward : public r1kit::RewardFn {
//    public:
//     r1kit::RewardResult score(const r1kit::Sample& s) const override {
//       return {.value = s.completion.size() < 200 ? 1.0 : 0.0};
//     }
//   };
//   REGISTER_REWARD("short", LengthReward);
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/registry.h"

namespace r1kit {

// What a reward sees of one completion.
struct Sample {
  std::string prompt;                   // the rendered prompt text
  std::string completion;               // the generated text (observations included for multi-turn)
  std::vector<int64_t> completion_ids;  // token ids of `completion`; may be empty outside training
  std::string reference;                // the task's reference answer; "" when the task has none
  nlohmann::json metadata;              // the task's metadata (numbers, source file and line, ...)
};

// A reward's verdict on one sample.
struct RewardResult {
  // The score; nullopt = not applicable to this sample (TRL's None): it adds
  // nothing to the weighted total and is left out of this reward's mean.
  std::optional<double> value;
  // Named parts of the score, logged as rewards/<reward>/<component>/mean.
  std::map<std::string, double> components;
  // Anything worth logging next to the sample (the extracted answer, say).
  nlohmann::json info;
};

// When a call must return by; RewardSet passes the end of the call's timeout.
using Deadline = std::chrono::steady_clock::time_point;

// Thrown by a reward that gave up at its deadline; counted as a timeout, not
// as an error.
class RewardTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RewardFn {
 public:
  virtual ~RewardFn() = default;

  // Scores one sample. Thread-safe. May throw: the caller records an error and
  // uses the configured fallback score.
  virtual RewardResult score(const Sample& sample) const = 0;

  // Like score(), for rewards that can stop early (a subprocess or a server):
  // they return or throw by `deadline`. The default ignores the deadline.
  virtual RewardResult score_until(const Sample& sample, Deadline deadline) const {
    return score(sample);
  }

  // True when score_batch() is cheaper than one score() per sample (a learned
  // model that runs one forward pass, an HTTP service taking a list).
  virtual bool prefers_batches() const { return false; }

  // Scores `samples` at once, one result per sample in order. Thread-safe.
  // The default calls score_until() on each.
  virtual std::vector<RewardResult> score_batch(const std::vector<Sample>& samples,
                                                Deadline deadline) const;
};

// Builds a reward from its recipe options; `source` names where the options
// came from ("recipe.json: rewards[0].options") for error messages.
using RewardFactory = std::function<std::unique_ptr<RewardFn>(const nlohmann::json& options,
                                                              const std::string& source)>;

// The reward registry: REGISTER_REWARD lines (built-ins and plugins) add to it.
Registry<RewardFactory>& reward_registry();

// reward_registry().add(name, factory): a taken name is a config error.
void register_reward(const std::string& name, RewardFactory factory);
// Builds the reward registered as `name` from `options` (null or an object); an
// unknown name throws the registry's config error with `source` in front.
std::unique_ptr<RewardFn> make_reward(const std::string& name, const nlohmann::json& options,
                                      const std::string& source);
// reward_registry().names(): sorted.
std::vector<std::string> registered_rewards();

// Loads a shared library whose static REGISTER_REWARD lines add rewards (a
// user's custom C++ reward built against the installed r1kit): load_plugin()
// of common/plugin.h, which loads plugins of any registry.
void load_reward_plugin(const std::string& path);

namespace detail {
// A config error for a reward that takes no options but was given some.
[[noreturn]] void reject_reward_options(const std::string& name, const std::string& source);

template <class Reward>
std::unique_ptr<RewardFn> construct_reward(const std::string& name, const nlohmann::json& options,
                                           const std::string& source) {
  if constexpr (std::is_constructible_v<Reward, const nlohmann::json&, const std::string&>) {
    return std::make_unique<Reward>(options, source);
  } else {
    if (!options.is_null() && !options.empty()) reject_reward_options(name, source);
    return std::make_unique<Reward>();
  }
}
}  // namespace detail

}  // namespace r1kit

// Registers `Class` under `name` at load time. `Class` has a constructor
// `(const nlohmann::json& options, const std::string& source)`, or a default
// constructor when it takes no options.
#define REGISTER_REWARD(name, Class)                                                       \
  R1KIT_REGISTER(::r1kit::reward_registry(), name,                                         \
                 [](const nlohmann::json& options, const std::string& source) {            \
                   return ::r1kit::detail::construct_reward<Class>(name, options, source); \
                 })
