#include "environments/task_data.h"

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "common/seed.h"
#include "environments/prompt_template.h"

namespace r1kit {

void TaskDataConfig::visit(ConfigVisitor& v) {
  v.section("environment", environment);
  v.field("format", format, {.choices = {"sft", "text", "tasks"}});
  v.field("count", count, {.min = 0.0});
  v.field("seed", seed, {.min = 0.0});
  v.field("output", output, {.required = true});
}

void check_task_data(const TaskDataConfig& config, const std::string& source) {
  const auto known = registered_environments();
  if (std::find(known.begin(), known.end(), config.environment.name) == known.end()) {
    make_environment(config.environment.name, nlohmann::json::object(),
                     source + ": environment.name");  // throws, listing the known names
  }
  make_prompt_template(config.environment.prompt_template, config.environment.system_prompt,
                       source + ": environment.prompt_template");
}

int64_t write_task_data(const TaskDataConfig& config, const std::string& source) {
  check_task_data(config, source);
  auto environment = make_environment(config.environment.name, config.environment.options,
                                      source + ": environment.options");
  auto prompt_template =
      make_prompt_template(config.environment.prompt_template, config.environment.system_prompt,
                           source + ": environment.prompt_template");
  std::mt19937_64 rng = make_rng(static_cast<uint64_t>(config.seed), "data/generate");
  auto tasks = environment->next_tasks(static_cast<size_t>(config.count), rng);
  std::string text;  // the whole file, so a mistake leaves no partial file behind
  for (const auto& task : tasks) {
    std::string prompt = prompt_template->render(task);
    nlohmann::json line;
    if (config.format == "sft") {
      if (task.solution.empty()) {
        throw_config_error(
            source + ": environment \"" + config.environment.name +
            "\" gave no worked solution for format sft; set its option \"worked_steps\": true");
      }
      line = {{"prompt", prompt}, {"response", " " + task.solution}};
    } else if (config.format == "text") {
      line = {{"text", prompt + " " + (task.solution.empty() ? task.reference : task.solution)}};
    } else {
      line = {{"prompt", task.prompt}, {"answer", task.reference}};
    }
    text += line.dump() + "\n";
  }
  std::ofstream out(config.output, std::ios::binary);
  if (!out) throw_io_error(config.output + ": cannot open for writing");
  out << text;
  out.flush();
  if (!out) throw_io_error(config.output + ": write failed");
  return static_cast<int64_t>(tasks.size());
}

}  // namespace r1kit
