// A pipeline: the whole R1 recipe from nothing in one file, run by
// `r1kit train PIPELINE.json`. Its steps run in order: generate (an
// environment's tasks as JSONL), prepare (token shards), a stage recipe (file
// or inline, with `set` overrides), and kinds that libraries outside libr1kit
// register (the plot library's plot: reward curves). Every step is validated
// before the first one runs; finished steps are listed in
// <output_dir>/pipeline_state.json so a resumed pipeline skips them.
// Runs in one process; load once, then read-only.
//
//   {"pipeline": "r1_arith", "seed": 1, "output_dir": "runs/r1_arith/seed-${seed}",
//    "steps": [
//      {"name": "corpus", "generate": {"environment": {...}, "format": "text",
//                                      "count": 40000, "output": "${output_dir}/corpus.jsonl"}},
//      {"name": "sft", "recipe": "r1_arith/sft.json",
//       "set": {"model.path": "${output_dir}/pretrain/final"}}]}
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/registry.h"
#include "data/prepare.h"
#include "environments/task_data.h"
#include "learner/recipe.h"

namespace r1kit {

// A step kind beyond the built-in generate, prepare and recipe, registered from
// outside libr1kit (the plot library registers "plot"). A step
// `{"name": ..., "<kind>": SECTION}` is loaded with the pipeline and run in order.
// Both functions throw r1kit::Error, messages prefixed with `source`
// (`pipeline.json: step "name"`).
struct PipelineStepKind {
  // Validates SECTION (variables already substituted) and returns it resolved,
  // defaults filled: what pipeline.json records and --resume compares.
  std::function<nlohmann::json(const nlohmann::json& section, const std::string& source)> load;
  // Runs the step from what `load` returned.
  std::function<void(const nlohmann::json& resolved, const std::string& source)> run;
};

// The step kinds registered from outside the library, by name (the key of the
// step's section): R1KIT_REGISTER(pipeline_step_kinds(), "plot", PipelineStepKind{...}).
Registry<PipelineStepKind>& pipeline_step_kinds();

// One step, resolved: variables substituted, defaults filled, validated.
struct PipelineStep {
  std::string name;    // unique in the pipeline; a stage step's run folder is <output_dir>/<name>
  std::string kind;    // "generate", "prepare", "recipe" or a name in pipeline_step_kinds()
  std::string source;  // `pipeline.json: step "name"`, the prefix of this step's errors
  TaskDataConfig generate;    // kind generate; seed defaults to the step's seed
  DataPrepareConfig prepare;  // kind prepare
  Recipe
      recipe;  // kind recipe; seed = the step's seed, output_dir = <output_dir>/<name> unless set
  nlohmann::json resolved;  // {"name", "seed_offset", <kind>: the resolved section or recipe}
};

struct Pipeline {
  std::string name;        // the "pipeline" key, shown in logs
  int64_t seed = 0;        // `${seed}`; a step's seed is this plus its seed_offset
  std::string output_dir;  // `${output_dir}`; "" in the file = runs/<file name without .json>
  std::string source;      // the pipeline file
  std::vector<std::string> plugins;  // the plugins it loaded, as paths
  std::vector<PipelineStep> steps;

  // The pipeline as it runs; written to <output_dir>/pipeline.json.
  nlohmann::json resolved() const;
};

// True when `json` is a pipeline (has a top-level "pipeline" key), not a stage recipe.
bool is_pipeline(const nlohmann::json& json);

// Reads `path`, applies `overrides` ("seed=2", "output_dir=X") to the pipeline's
// own keys, substitutes `${seed}` and `${output_dir}` in the steps' strings (a
// string that is exactly "${seed}" becomes the number), and loads every step.
// A stage recipe given as a path is read relative to the pipeline file's folder.
// Errors name the pipeline file, the step and the key path.
Pipeline load_pipeline(const std::string& path, const std::vector<std::string>& overrides);

struct PipelineOptions {
  // Skip the leading steps that a run in the same output_dir finished with the
  // same resolved definition; the next stage step resumes from its checkpoint.
  bool resume = false;
  // Run every step again in an output_dir that holds an earlier run (without
  // resume or overwrite, such a folder is a usage error).
  bool overwrite = false;
  // Stop after the step of this name ("" = run every step); another name is a
  // usage error that lists the steps.
  std::string until;
};

// Runs the steps in order, logging each with its elapsed time. Returns true
// when every step has run (or was skipped as finished), false when --until
// stopped the pipeline earlier. One process only: WORLD_SIZE > 1 is a usage error.
bool run_pipeline(const Pipeline& pipeline, const PipelineOptions& options);

}  // namespace r1kit
