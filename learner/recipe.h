// The recipe: the whole JSON file `r1kit train` runs, one struct field per key.
// Each section's struct lives in the folder that owns it; this file only puts
// them together. Read once at start-up, validated, then read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace r1kit {

struct Recipe {
  // Which stage of the R1 pipeline this recipe runs.
  std::string stage;
  // Seeds torch and every derived generator; fixes a CPU run.
  int64_t seed = 0;
  // The run folder; "" = runs/<recipe file name without .json>.
  std::string output_dir;

  void visit(ConfigVisitor& v);
};

// The stages a recipe may name, in pipeline order.
const std::vector<std::string>& recipe_stages();

// Reads `path`, applies `overrides` ("a.b=value"), validates. Errors name the
// file and key path.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides,
                   nlohmann::json* resolved = nullptr);

}  // namespace r1kit
