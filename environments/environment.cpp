#include "environments/environment.h"

namespace r1kit {

Registry<EnvironmentFactory>& environment_registry() {
  static Registry<EnvironmentFactory> registry("environment");
  return registry;
}

void EnvironmentConfig::visit(ConfigVisitor& v) {
  v.field("name", name);
  v.field("options", options);
  v.field("prompt_template", prompt_template);
  v.field("system_prompt", system_prompt);
  v.field("add_special_tokens", add_special_tokens);
  if (!options.is_object()) v.fail("options", "expected an object, got " + options.dump());
}

void register_environment(const std::string& name, EnvironmentFactory factory) {
  environment_registry().add(name, std::move(factory));
}

std::vector<std::string> registered_environments() { return environment_registry().names(); }

std::unique_ptr<Environment> make_environment(const std::string& name,
                                              const nlohmann::json& options,
                                              const std::string& source) {
  EnvironmentFactory factory = environment_registry().get(name, source);
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
