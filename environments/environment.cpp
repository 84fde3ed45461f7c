#include "environments/environment.h"

#include <map>
#include <mutex>

#include "common/error.h"

namespace r1kit {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, EnvironmentFactory> factories;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void EnvironmentConfig::visit(ConfigVisitor& v) {
  v.field("name", name);
  v.field("options", options);
  v.field("prompt_template", prompt_template);
  v.field("system_prompt", system_prompt);
  if (!options.is_object()) v.fail("options", "expected an object, got " + options.dump());
}

void register_environment(const std::string& name, EnvironmentFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.factories.emplace(name, std::move(factory)).second) {
    throw_config_error("environment \"" + name + "\" is registered twice");
  }
}

std::vector<std::string> registered_environments() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, _] : r.factories) names.push_back(name);
  return names;
}

std::unique_ptr<Environment> make_environment(const std::string& name,
                                              const nlohmann::json& options,
                                              const std::string& source) {
  EnvironmentFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::vector<std::string> known = registered_environments();
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    std::string guess = did_you_mean(name, known);
    throw_config_error(source + ": unknown environment \"" + name + "\"" +
                       (guess.empty() ? "" : " (did you mean \"" + guess + "\"?)") +
                       "; known environments: " + list);
  }
  return factory(options.is_null() ? nlohmann::json::object() : options, source);
}

RenderedTurns render_turns(const std::vector<Turn>& turns) {
  RenderedTurns out;
  for (const Turn& turn : turns) {
    if (turn.observation)
      out.observation_spans.emplace_back(out.text.size(), out.text.size() + turn.text.size());
    out.text += turn.text;
  }
  return out;
}

int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

const std::vector<Task>& GeneratedEnvironment::eval_tasks() {
  if (!eval_ready_) {
    std::mt19937_64 rng(eval_seed_);
    for (int64_t i = 0; i < eval_size_; ++i) {
      Task task = generate(rng);
      if (!eval_prompts_.insert(task.prompt).second) continue;  // small task spaces repeat
      eval_.push_back(std::move(task));
    }
    eval_ready_ = true;
  }
  return eval_;
}

std::vector<Task> GeneratedEnvironment::next_tasks(size_t n, std::mt19937_64& rng) {
  eval_tasks();
  std::vector<Task> tasks;
  tasks.reserve(n);
  while (tasks.size() < n) {
    Task task = generate(rng);
    // A held-out prompt is drawn again, a bounded number of times: a task space
    // smaller than the eval split must not loop forever.
    for (int retry = 0; retry < 100 && eval_prompts_.count(task.prompt) > 0; ++retry)
      task = generate(rng);
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace r1kit
