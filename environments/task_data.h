// Task data files: an environment's tasks written as JSONL, so the R1 pipeline
// can start from nothing. `sft` lines are prompt/response pairs with worked
// solutions (the cold-start set), `text` lines a pretraining corpus, `tasks`
// lines prompt/answer pairs. Used by `r1kit data generate` and by a pipeline's
// generate steps. Plain functions; one call per output file at a time.
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "environments/environment.h"

namespace r1kit {

struct TaskDataConfig {
  EnvironmentConfig environment;  // name, options, prompt_template, system_prompt, as in a recipe
  std::string format =
      "sft";             // sft ({prompt, response}), text ({text}) or tasks ({prompt, answer})
  int64_t count = 1000;  // tasks to write
  int64_t seed = 0;      // generator seed (the draws come from make_rng(seed, "data/generate"))
  std::string output;    // the JSONL file to write; required

  void visit(ConfigVisitor& v);
};

// Writes `config.count` tasks to `config.output` and returns the lines
// written. `source` prefixes config errors (an unknown environment or
// template, an environment without worked solutions for format sft); an
// unwritable output is an I/O error.
int64_t write_task_data(const TaskDataConfig& config, const std::string& source);

// The name checks of write_task_data (environment and prompt template) without
// generating anything, so a pipeline can validate the step before it runs.
void check_task_data(const TaskDataConfig& config, const std::string& source);

}  // namespace r1kit
