// Shared by the learner tests of the `grpo` keys: the section read on its own
// from JSON, so values and errors carry the key path grpo.<key> and the file
// name recipe.json, as a recipe's would.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/config.h"
#include "common/error.h"
#include "learner/grpo_config.h"

namespace r1kit::testing {

struct GrpoSection {
  GrpoConfig grpo;
  void visit(ConfigVisitor& v) { v.section("grpo", grpo); }
};

inline GrpoConfig read_grpo(const nlohmann::json& grpo) {
  return read_config<GrpoSection>({{"grpo", grpo}}, "recipe.json").grpo;
}

// The config error that `grpo` raises; a test failure when it raises none.
inline std::string grpo_error(const nlohmann::json& grpo) {
  try {
    read_grpo(grpo);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    return e.what();
  }
  ADD_FAILURE() << "no error for " << grpo.dump();
  return "";
}

}  // namespace r1kit::testing
