#include "learner/stage.h"

#include <cstdlib>

#include "common/logging.h"
#include "common/seed.h"
#include "learner/run_checkpoint.h"

namespace r1kit {

Registry<StageDriver>& stage_registry() {
  static Registry<StageDriver> registry("stage");
  return registry;
}

void register_stage(const std::string& name, StageDriver driver) {
  stage_registry().add(name, std::move(driver));
}

StageDriver find_stage(const std::string& name) { return stage_registry().get(name); }

std::vector<std::string> registered_stages() { return stage_registry().names(); }

void run_stage(const Recipe& recipe, const nlohmann::json& resolved, const TrainOptions& options) {
  const StageDriver driver = find_stage(recipe.stage);
  // Rank 0 owns the run folder's files; the other ranks only read checkpoints.
  const char* rank = std::getenv("RANK");
  const bool main_rank = rank == nullptr || std::string(rank).empty() || std::string(rank) == "0";
  bool append = false;
  if (options.resume) {
    // Lines the killed run logged after its last checkpoint are dropped: the
    // resumed run writes them again.
    auto checkpoint = latest_run_checkpoint(recipe.output_dir);
    if (checkpoint) {
      int64_t step =
          read_json_file((*checkpoint / "trainer_state.json").string()).at("step").get<int64_t>();
      if (main_rank) truncate_metrics(recipe.output_dir, step);
      append = true;
    }
  }
  RunDir run_dir(recipe.output_dir, append, main_rank);
  run_dir.write_config(resolved);
  seed_torch(static_cast<uint64_t>(recipe.seed));
  log_info() << "stage " << recipe.stage << ", run folder " << run_dir.path().string();
  driver(recipe, run_dir, options);
}

}  // namespace r1kit
