#include "learner/stage.h"

#include <map>

#include "common/error.h"

namespace r1kit {
namespace {

std::map<std::string, StageDriver>& stage_registry() {
  static std::map<std::string, StageDriver> registry;
  return registry;
}

}  // namespace

void register_stage(const std::string& name, StageDriver driver) {
  auto [_, inserted] = stage_registry().emplace(name, std::move(driver));
  if (!inserted) throw Error("stage \"" + name + "\" registered twice");
}

const StageDriver& find_stage(const std::string& name) {
  auto it = stage_registry().find(name);
  if (it == stage_registry().end()) {
    std::string known;
    for (const auto& stage : registered_stages()) known += (known.empty() ? "" : ", ") + stage;
    throw_config_error("stage \"" + name + "\" is not built into this r1kit (built: " +
                       (known.empty() ? "none" : known) + ")");
  }
  return it->second;
}

std::vector<std::string> registered_stages() {
  std::vector<std::string> names;
  for (const auto& [name, _] : stage_registry()) names.push_back(name);
  return names;
}

}  // namespace r1kit
