#include "learner/pipeline.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/elapsed.h"
#include "common/error.h"
#include "common/logging.h"
#include "common/run_dir.h"
#include "common/run_folder_lock.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kBuiltInStepKinds = {"generate", "prepare", "recipe"};
constexpr char kStateFile[] = "pipeline_state.json";

// The top level of a pipeline file.
struct PipelineFile {
  std::string pipeline;              // the pipeline's name; required
  int64_t seed = 0;                  // `${seed}`
  std::string output_dir;            // `${output_dir}`; "" = runs/<file stem>
  json steps;                        // list of step objects, read by StepFile
  std::vector<std::string> plugins;  // loaded first (relative to the pipeline file's folder)

  void visit(ConfigVisitor& v) {
    v.field("pipeline", pipeline, {.required = true});
    v.field("seed", seed, {.min = 0.0});
    v.field("output_dir", output_dir);
    v.field("plugins", plugins);
    v.field("steps", steps, {.required = true});
    if (!steps.is_array() || steps.empty()) v.fail("steps", "expected a non-empty list of steps");
  }
};

// One step object as written, less a registered kind's section. Exactly one
// of generate, prepare, recipe or a registered kind.
struct StepFile {
  std::string name;         // required
  int64_t seed_offset = 0;  // the step's seed is the pipeline's seed plus this
  TaskDataConfig generate;
  DataPrepareConfig prepare;
  json recipe;                // a path (relative to the pipeline file's folder) or an inline recipe
  json set = json::object();  // recipe only: {"a.b": value} applied like --set a.b=value

  void visit(ConfigVisitor& v) {
    v.field("name", name, {.required = true});
    v.field("seed_offset", seed_offset);
    v.section("generate", generate);
    v.section("prepare", prepare);
    v.field("recipe", recipe);
    v.field("set", set);
  }
};

// Replaces ${seed} and ${output_dir} in every string under `node`; `path` is
// the key path of `node`, for errors.
void substitute(json& node, const json& variables, const std::string& source,
                const std::string& path) {
  if (node.is_object()) {
    for (auto& [key, child] : node.items())
      substitute(child, variables, source, path.empty() ? key : path + "." + key);
    return;
  }
  if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i)
      substitute(node[i], variables, source, path + "[" + std::to_string(i) + "]");
    return;
  }
  if (!node.is_string()) return;
  const std::string text = node.get<std::string>();
  std::string out;
  size_t at = 0;
  while (true) {
    size_t open = text.find("${", at);
    if (open == std::string::npos) break;
    size_t close = text.find('}', open);
    if (close == std::string::npos)
      throw_config_error(source + ": " + path + ": unterminated ${ in \"" + text + "\"");
    std::string name = text.substr(open + 2, close - open - 2);
    if (!variables.contains(name)) {
      std::string known;
      for (const auto& [key, _] : variables.items())
        known += (known.empty() ? "${" : ", ${") + key + "}";
      throw_config_error(source + ": " + path + ": unknown variable ${" + name +
                         "}; known: " + known);
    }
    const json& value = variables[name];
    if (open == 0 && close + 1 == text.size()) {
      node = value;  // "${seed}" alone keeps its type
      return;
    }
    out +=
        text.substr(at, open - at) + (value.is_string() ? value.get<std::string>() : value.dump());
    at = close + 1;
  }
  node = out + text.substr(at);
}

void check_step_name(const std::string& name, const std::string& source) {
  auto allowed = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  };
  if (name.empty() || name == "." || name == ".." ||
      !std::all_of(name.begin(), name.end(), allowed)) {
    throw_config_error(source + ": name: \"" + name +
                       "\" must be a folder name (letters, digits, '_', '-', '.'): a stage runs in "
                       "<output_dir>/<name>");
  }
}

// Loads a stage step's recipe: the file or inline object, the pipeline's
// seed and output_dir, then the step's `set` entries.
void load_recipe_step(PipelineStep& step, const StepFile& file, int64_t seed,
                      const Pipeline& pipeline) {
  json recipe;
  std::string recipe_source = step.source;
  fs::path recipe_folder = fs::path(pipeline.source).parent_path();
  if (file.recipe.is_string()) {
    fs::path path = fs::path(pipeline.source).parent_path() / file.recipe.get<std::string>();
    recipe_folder = path.parent_path();
    recipe_source = step.source + " (" + path.string() + ")";
    try {
      recipe = read_json_file(path.string(), /*reject_duplicate_keys=*/true);
    } catch (const Error& e) {
      throw with_context(e, step.source + ": recipe");
    }
  } else if (file.recipe.is_object()) {
    recipe = file.recipe;
    recipe_source = step.source + ": recipe";
  } else {
    throw_config_error(step.source + ": recipe: expected a recipe file path or an object, got " +
                       file.recipe.dump());
  }
  if (is_pipeline(recipe))
    throw_config_error(recipe_source + ": a pipeline cannot run another pipeline");
  recipe["seed"] = seed;
  recipe["output_dir"] = (fs::path(pipeline.output_dir) / step.name).string();
  if (!file.set.is_object())
    throw_config_error(step.source + ": set: expected an object {\"key.path\": value}");
  for (const auto& [key, value] : file.set.items()) {
    if (std::string problem = set_key_path(recipe, key, value); !problem.empty()) {
      throw_config_error(step.source + ": set." + key + ": " + problem);
    }
  }
  load_recipe_plugins(recipe, recipe_folder, recipe_source);
  json resolved;
  step.recipe = parse_recipe(recipe, recipe_source, step.name, &resolved);
  try {
    find_stage(step.recipe.stage);
  } catch (const Error& e) {
    throw with_context(e, recipe_source + ": stage");
  }
  step.resolved["recipe"] = resolved;
}

// "a, b or c" (`last` = " or "), "a, b, c" (`last` = ", ").
std::string join(const std::vector<std::string>& names, const char* last) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i)
    text += (i == 0 ? "" : i + 1 == names.size() ? last : ", ") + names[i];
  return text;
}

// The step's kind: its one key besides name, seed_offset and set that is a
// built-in or registered kind.
std::string step_kind(const json& raw, const std::string& source) {
  std::vector<std::string> known = kBuiltInStepKinds;
  for (const std::string& name : pipeline_step_kinds().names()) known.push_back(name);
  std::vector<std::string> kinds, others;
  for (const auto& [key, _] : raw.items()) {
    if (key == "name" || key == "seed_offset" || key == "set") continue;
    (std::find(known.begin(), known.end(), key) != known.end() ? kinds : others).push_back(key);
  }
  if (kinds.empty() && others.size() == 1) {
    std::string message = source + ": unknown step kind \"" + others[0] + "\"";
    if (std::string guess = did_you_mean(others[0], known); !guess.empty())
      message += " (did you mean \"" + guess + "\"?)";
    message += "; known: " + join(known, ", ") +
               ". Other kinds come from the libraries a program links: the plot step from the "
               "plot library (r1kit_plot), which the r1kit command links";
    throw_config_error(message);
  }
  if (kinds.size() != 1) {
    throw_config_error(source + ": expected exactly one of " + join(known, " or ") + ", got " +
                       std::to_string(kinds.size()));
  }
  return kinds[0];
}

PipelineStep load_step(json raw, size_t index, const Pipeline& pipeline,
                       std::vector<std::string>& names) {
  const std::string where = pipeline.source + ": steps[" + std::to_string(index) + "]";
  if (!raw.is_object()) throw_config_error(where + ": expected an object, got " + raw.dump());
  if (!raw.contains("name") || !raw["name"].is_string()) {
    throw_config_error(where + ": name: required string key is missing");
  }
  PipelineStep step;
  step.name = raw["name"].get<std::string>();
  step.source = pipeline.source + ": step \"" + step.name + "\"";
  check_step_name(step.name, step.source);
  if (std::find(names.begin(), names.end(), step.name) != names.end()) {
    throw_config_error(step.source + ": name: used by an earlier step; step names must be unique");
  }
  names.push_back(step.name);

  step.kind = step_kind(raw, step.source);
  if (raw.contains("set") && step.kind != "recipe")
    throw_config_error(step.source + ": set: only a recipe step takes set");

  const json variables = {{"seed", pipeline.seed}, {"output_dir", pipeline.output_dir}};
  substitute(raw, variables, step.source, "");
  const bool registered = std::find(kBuiltInStepKinds.begin(), kBuiltInStepKinds.end(),
                                    step.kind) == kBuiltInStepKinds.end();
  json section;
  if (registered) {
    section = raw[step.kind];
    raw.erase(step.kind);
  }
  StepFile file = read_config<StepFile>(raw, step.source);
  const int64_t seed = pipeline.seed + file.seed_offset;
  if (seed < 0)
    throw_config_error(step.source + ": seed_offset: the step's seed " + std::to_string(seed) +
                       " is negative");
  if (step.kind == "generate" && !raw["generate"].contains("seed")) file.generate.seed = seed;

  step.resolved = {{"name", step.name}, {"seed_offset", file.seed_offset}};
  if (step.kind == "generate") {
    step.generate = file.generate;
    check_task_data(step.generate, step.source + ": generate");
    step.resolved["generate"] = write_config(step.generate);
  } else if (step.kind == "prepare") {
    step.prepare = file.prepare;
    step.resolved["prepare"] = write_config(step.prepare);
  } else if (registered) {
    step.resolved[step.kind] = pipeline_step_kinds().get(step.kind).load(section, step.source);
  } else {
    load_recipe_step(step, file, seed, pipeline);
  }
  return step;
}

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1fs", seconds);
  return text;
}

// How many leading steps a run in the same folder finished with the same
// resolved definition.
size_t finished_prefix(const Pipeline& pipeline, const fs::path& state_path) {
  if (!fs::exists(state_path)) return 0;
  json state = read_json_file(state_path.string());
  const json finished = state.value("finished", json::array());
  size_t count = 0;
  while (count < pipeline.steps.size() && count < finished.size() &&
         finished[count] == pipeline.steps[count].resolved) {
    ++count;
  }
  if (count < finished.size() && count < pipeline.steps.size()) {
    log_warning() << "--resume: step \"" << pipeline.steps[count].name
                  << "\" changed since it finished; running it and every later step again";
  }
  return count;
}

// A pipeline run into an output_dir where another one ran (its state file, or
// a stage folder holding a run) needs --resume or --overwrite.
void refuse_earlier_run(const Pipeline& pipeline) {
  std::string existing;
  if (fs::exists(fs::path(pipeline.output_dir) / kStateFile)) existing = kStateFile;
  for (const auto& step : pipeline.steps) {
    if (!existing.empty()) break;
    if (step.kind != "recipe") continue;
    if (std::string run = describe_existing_run(step.recipe.output_dir); !run.empty())
      existing = step.recipe.output_dir + ": " + run;
  }
  if (existing.empty()) return;
  throw_usage_error(pipeline.output_dir + " already holds a pipeline run (" + existing +
                    "); add --resume to skip its finished steps, or --overwrite to run every "
                    "step again");
}

void run_step(const PipelineStep& step, bool resume) {
  if (step.kind == "generate") {
    fs::path output(step.generate.output);
    if (output.has_parent_path()) fs::create_directories(output.parent_path());
    int64_t written = write_task_data(step.generate, step.source + ": generate");
    log_info() << "wrote " << written << " " << step.generate.format << " lines to "
               << output.string();
  } else if (step.kind == "prepare") {
    prepare_corpus(step.prepare, step.source + ": prepare");  // logs what it kept
  } else if (step.kind != "recipe") {
    pipeline_step_kinds().get(step.kind).run(step.resolved.at(step.kind), step.source);
  } else {
    // Only the interrupted stage resumes, and only from a checkpoint it wrote:
    // stages without --resume (rejection_sample) then simply run again.
    // run_pipeline decided what happens to earlier runs: a step that does not
    // resume starts its folder again.
    const bool from_checkpoint =
        resume && latest_run_checkpoint(step.recipe.output_dir).has_value();
    run_stage(step.recipe, step.resolved["recipe"],
              TrainOptions{.resume = from_checkpoint, .overwrite = !from_checkpoint});
  }
}

}  // namespace

Registry<PipelineStepKind>& pipeline_step_kinds() {
  static Registry<PipelineStepKind> registry("pipeline step kind");
  return registry;
}

nlohmann::json Pipeline::resolved() const {
  json steps_json = json::array();
  for (const auto& step : steps) steps_json.push_back(step.resolved);
  json resolved = {
      {"pipeline", name}, {"seed", seed}, {"output_dir", output_dir}, {"steps", steps_json}};
  if (!plugins.empty()) resolved["plugins"] = plugins;
  return resolved;
}

bool is_pipeline(const nlohmann::json& json) {
  return json.is_object() && json.contains("pipeline");
}

Pipeline load_pipeline(const std::string& path, const std::vector<std::string>& overrides) {
  json raw = read_json_file(path, /*reject_duplicate_keys=*/true);
  for (const auto& assignment : overrides) apply_override(raw, assignment);
  load_recipe_plugins(raw, fs::path(path).parent_path(), path);
  PipelineFile file = read_config<PipelineFile>(raw, path);
  Pipeline pipeline;
  pipeline.name = file.pipeline;
  pipeline.plugins = file.plugins;
  pipeline.seed = file.seed;
  pipeline.source = path;
  json output_dir = file.output_dir.empty() ? json("runs/" + fs::path(path).stem().string())
                                            : json(file.output_dir);
  substitute(output_dir, {{"seed", file.seed}}, path, "output_dir");
  if (!output_dir.is_string()) throw_config_error(path + ": output_dir: expected a folder path");
  pipeline.output_dir = output_dir.get<std::string>();
  std::vector<std::string> names;
  for (size_t i = 0; i < file.steps.size(); ++i)
    pipeline.steps.push_back(load_step(file.steps[i], i, pipeline, names));
  return pipeline;
}

bool run_pipeline(const Pipeline& pipeline, const PipelineOptions& options) {
  if (const char* world = std::getenv("WORLD_SIZE"); world && std::atoi(world) > 1) {
    throw_usage_error(pipeline.source + ": a pipeline runs in one process (WORLD_SIZE is " +
                      std::string(world) + "); launch its stage recipes one by one instead");
  }
  size_t count = pipeline.steps.size();
  if (!options.until.empty()) {
    std::string names;
    for (size_t i = 0; i < pipeline.steps.size(); ++i) {
      if (pipeline.steps[i].name == options.until) count = i + 1;
      names += (names.empty() ? "" : ", ") + pipeline.steps[i].name;
    }
    if (count == pipeline.steps.size() && pipeline.steps.back().name != options.until)
      throw_usage_error(pipeline.source + ": --until " + options.until +
                        ": no such step; the steps are " + names);
  }
  const auto start = std::chrono::steady_clock::now();
  const fs::path output_dir(pipeline.output_dir);
  const RunFolderLock lock(output_dir);
  if (!options.resume && !options.overwrite) refuse_earlier_run(pipeline);
  write_file_atomically(output_dir / "pipeline.json", pipeline.resolved().dump(2) + "\n");
  const fs::path state_path = output_dir / kStateFile;
  const size_t skip = options.resume ? finished_prefix(pipeline, state_path) : 0;

  json finished = json::array();
  for (size_t i = 0; i < count; ++i) {
    const PipelineStep& step = pipeline.steps[i];
    const std::string label = "pipeline " + pipeline.name + ": step " + std::to_string(i + 1) +
                              "/" + std::to_string(count) + " \"" + step.name + "\"";
    if (i < skip) {
      log_info() << label << " finished in an earlier run; skipped";
      finished.push_back(step.resolved);
      continue;
    }
    std::string what = step.kind;
    if (step.kind == "recipe")
      what = "stage " + step.recipe.stage + ", run folder " + step.recipe.output_dir;
    log_info() << label << " (" << what << ")";
    const auto step_start = std::chrono::steady_clock::now();
    run_step(step, options.resume && i == skip);
    finished.push_back(step.resolved);
    write_file_atomically(state_path, json{{"finished", finished}}.dump(2) + "\n");
    log_info() << label << " done in " << format_seconds(seconds_since(step_start)) << " (pipeline "
               << format_seconds(seconds_since(start)) << ")";
  }
  if (count < pipeline.steps.size()) {
    log_info() << "pipeline " << pipeline.name << " stopped after step \"" << options.until
               << "\" in " << format_seconds(seconds_since(start)) << " (--until)";
    return false;
  }
  log_info() << "pipeline " << pipeline.name << " finished in "
             << format_seconds(seconds_since(start)) << "; resolved pipeline in "
             << (output_dir / "pipeline.json").string();
  return true;
}

}  // namespace r1kit
