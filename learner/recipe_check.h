// `r1kit train --check` beyond parsing: everything a run resolves before its
// first step is resolved here, without loading weights or writing anything:
// the stage's sections and cross-section rules, the model folder and
// tokenizer, the environment with its data and prompt template, every reward
// with its options (a subprocess reward's program is started and stopped).
#pragma once

#include <string>

#include "learner/recipe.h"

namespace r1kit {

// Throws the error the run would stop with. Paths under `produced_under` (a
// pipeline's output_dir) that do not exist yet are left alone: an earlier
// step writes them; what names them is checked when its step runs.
void check_recipe_resolves(const Recipe& recipe, const std::string& produced_under = "");

}  // namespace r1kit
