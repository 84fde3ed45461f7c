// Fuzzes the reading of a model folder's config.json and generation_config.json
// (policy/model_config.h, rollout/generation_config.h). The input is the two
// files joined by a NUL byte. A config that reads must also survive the trip
// through to_hf_json and back unchanged.
#include "common/config.h"
#include "fuzz/fuzz_support.h"
#include "policy/model_config.h"
#include "rollout/generation_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), '\0');
  const auto config_path = fuzz::write_temp_file("config.json", parts[0]);
  fuzz::accept_or_reject([&] {
    ModelConfig config =
        ModelConfig::from_hf_json(read_json_file(config_path.string()), config_path.string());
    config.validate(config_path.string());
    (void)config.head_size();
    const ModelConfig again = ModelConfig::from_hf_json(config.to_hf_json(), "round trip");
    if (again.to_hf_json() != config.to_hf_json()) std::abort();
    if (parts.size() < 2) return;
    const auto generation_path = fuzz::write_temp_file("generation_config.json", parts[1]);
    config.generation_config = read_json_file(generation_path.string());
    (void)end_of_sequence_ids(config, nullptr);
    SamplingParams params;
    (void)apply_generation_config(config.generation_config, {"repetition_penalty"}, params,
                                  generation_path.string());
  });
  return 0;
}
