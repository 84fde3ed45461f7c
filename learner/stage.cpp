#include "learner/stage.h"

#include <cstdlib>
#include <optional>

#include "common/error.h"
#include "common/logging.h"
#include "common/run_folder_lock.h"
#include "common/seed.h"
#include "learner/run_checkpoint.h"

namespace r1kit {
namespace {

// Refuses to run into a folder that holds another run unless told what to do
// with it, and clears it for --overwrite. A file named `final` (where the run
// writes its model) is refused here, before any step runs.
void prepare_run_folder(const std::filesystem::path& folder, const TrainOptions& options) {
  const std::filesystem::path final_folder = folder / "final";
  if (std::filesystem::exists(final_folder) && !std::filesystem::is_directory(final_folder))
    throw_io_error(final_folder.string() +
                   " exists and is not a folder; the run writes its final model there: move it "
                   "away");
  if (options.overwrite) {
    clear_run_folder(folder);
  } else if (!options.resume) {
    const std::string existing = describe_existing_run(folder);
    if (!existing.empty())
      throw_usage_error(folder.string() + " already holds a run (" + existing +
                        "); add --resume to continue it from its last checkpoint, or --overwrite "
                        "to delete it and start again");
  }
}

}  // namespace

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
  const std::filesystem::path folder(recipe.output_dir);
  std::optional<RunFolderLock> lock;
  if (main_rank) {
    lock.emplace(folder);
    prepare_run_folder(folder, options);
  }
  bool append = false;
  if (options.resume) {
    // Lines the killed run logged after its last checkpoint are dropped: the
    // resumed run writes them again.
    auto checkpoint = latest_run_checkpoint(recipe.output_dir);
    if (checkpoint) {
      const int64_t step = read_trainer_state(*checkpoint)["step"].get<int64_t>();
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
