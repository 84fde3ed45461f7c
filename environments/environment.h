// An environment: a source of tasks (procedural generator or data set) with a
// fixed, seeded held-out split for evaluation, and, for multi-turn ones, a
// step() that answers the model's tool calls. next_tasks() is called from one
// thread at a time; step() is const and thread-safe (rollouts call it in parallel).
//
//   auto env = make_environment("countdown", {{"num_numbers", 4}}, "recipe.json:
//   environment.options"); std::mt19937_64 rng = make_rng(seed, "environment"); std::vector<Task>
//   batch = env->next_tasks(64, rng);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/config.h"
#include "common/registry.h"

namespace r1kit {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
};

// One task: what the model is asked, the reference answer rewards check
// against, and whatever else a reward or a log may need.
struct Task {
  std::string prompt;                 // the question as plain text ("" when `messages` holds it)
  std::vector<ChatMessage> messages;  // a chat prompt; empty for plain-text tasks
  std::string reference;              // the reference answer; "" when there is none
  std::string solution;               // a worked solution for SFT data; "" when there is none
  nlohmann::json metadata = nlohmann::json::object();  // e.g. {"numbers": [..], "target": 24}
};

// One segment of a multi-turn trajectory after the prompt.
struct Turn {
  std::string text;
  bool observation = false;  // written by the environment: masked out of the loss
};

// The environment's answer to the model's latest turn.
struct StepResult {
  std::string observation;       // text to append after the model's turn ("" when done)
  bool done = true;              // no further turns
  std::optional<double> reward;  // a final reward of the environment's own; nullopt = none
};

class Environment {
 public:
  virtual ~Environment() = default;

  // Draws `n` training tasks; never one of eval_tasks().
  virtual std::vector<Task> next_tasks(size_t n, std::mt19937_64& rng) = 0;
  // The held-out split: the same tasks on every call and in every run with the
  // same options.
  virtual const std::vector<Task>& eval_tasks() = 0;

  // Multi-turn environments answer each model turn; single-turn ones end at once.
  virtual bool multi_turn() const { return false; }
  // `history` holds the turns so far (model turns and observations), the
  // latest model turn not included: that is `completion`.
  virtual StepResult step(const Task& task, const std::vector<Turn>& history,
                          const std::string& completion) const {
    return {};
  }
};

// A trajectory's text after the prompt, with the [begin, end) byte ranges the
// environment wrote, so a learner can mask their tokens out of the loss.
struct RenderedTurns {
  std::string text;
  std::vector<std::pair<size_t, size_t>> observation_spans;
};
RenderedTurns render_turns(const std::vector<Turn>& turns);

// The environment's section of a recipe.
struct EnvironmentConfig {
  std::string name =
      "addition";  // registry name: addition, multiplication, countdown, sorting, ...
  nlohmann::json options = nlohmann::json::object();  // handed to the environment's constructor
  std::string prompt_template = "r1_zero";            // registry name: r1_zero, chatml, plain
  std::string system_prompt;                          // chatml's system message; "" = none
  // Put the tokenizer's post-processor tokens around each rendered prompt (a
  // Llama-3 <|begin_of_text|>; Qwen2 adds none), as transformers' tokenizer(text)
  // does by default (HF add_special_tokens); false = the rendered text's ids only.
  bool add_special_tokens = true;

  void visit(ConfigVisitor& v);
};

using EnvironmentFactory = std::function<std::unique_ptr<Environment>(const nlohmann::json& options,
                                                                      const std::string& source)>;

// The environment registry: REGISTER_ENVIRONMENT lines add to it.
Registry<EnvironmentFactory>& environment_registry();

// environment_registry().add(name, factory): a taken name is a config error.
void register_environment(const std::string& name, EnvironmentFactory factory);
// Builds `name` from `options` (null = {}); an unknown name throws the
// registry's config error with `source` in front.
std::unique_ptr<Environment> make_environment(const std::string& name,
                                              const nlohmann::json& options,
                                              const std::string& source);
// environment_registry().names(): sorted.
std::vector<std::string> registered_environments();

// A procedural environment: one generate() per task; the held-out split is
// `eval_size` tasks drawn from `eval_seed`, and training draws that produce a
// held-out prompt are drawn again.
class GeneratedEnvironment : public Environment {
 public:
  GeneratedEnvironment(int64_t eval_size, uint64_t eval_seed)
      : eval_size_(eval_size), eval_seed_(eval_seed) {}

  std::vector<Task> next_tasks(size_t n, std::mt19937_64& rng) override;
  const std::vector<Task>& eval_tasks() override;

 protected:
  virtual Task generate(std::mt19937_64& rng) const = 0;

 private:
  int64_t eval_size_;
  uint64_t eval_seed_;
  bool eval_ready_ = false;
  std::vector<Task> eval_;
  std::unordered_set<std::string> eval_prompts_;
};

// Uniform integer in [lo, hi].
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi);

}  // namespace r1kit

// Registers `Class`, constructed as Class(const nlohmann::json& options, const std::string&
// source).
#define REGISTER_ENVIRONMENT(name, Class)                                                    \
  R1KIT_REGISTER(::r1kit::environment_registry(), name,                                      \
                 [](const nlohmann::json& options, const std::string& source) {              \
                   return std::unique_ptr<::r1kit::Environment>(new Class(options, source)); \
                 })
