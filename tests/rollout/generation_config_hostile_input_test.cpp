// generation_config.json with an integer knob written as a float too large
// for int64_t ("top_k": 1e300): a config error naming the file and key, where
// converting it was undefined behaviour (found by fuzz/model_config_fuzzer.cpp
// under UBSan).
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "rollout/generation_config.h"

namespace r1kit {
namespace {

TEST(GenerationConfigHostileInput, IntegerKnobThatIsNotAnIntegerIsAConfigError) {
  for (const nlohmann::json top_k : {nlohmann::json(1e300), nlohmann::json(40.5)}) {
    SamplingParams params;
    try {
      apply_generation_config({{"top_k", top_k}}, {}, params, "model/generation_config.json");
      FAIL() << "top_k " << top_k.dump() << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig);
      EXPECT_NE(
          std::string(e.what()).find("model/generation_config.json: top_k must be an integer"),
          std::string::npos)
          << e.what();
    }
    EXPECT_EQ(params.top_k, 0);
  }
}

TEST(GenerationConfigHostileInput, IntegerAndFloatKnobsStillApply) {
  SamplingParams params;
  const auto applied = apply_generation_config({{"top_k", 20}, {"temperature", 0.7}, {"top_p", 1}},
                                               {}, params, "generation_config.json");
  EXPECT_EQ(params.top_k, 20);
  EXPECT_DOUBLE_EQ(params.temperature, 0.7);
  EXPECT_DOUBLE_EQ(params.top_p, 1.0);
  EXPECT_EQ(applied.size(), 3u);
}

}  // namespace
}  // namespace r1kit
