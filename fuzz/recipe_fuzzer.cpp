// Fuzzes what `r1kit train --check RECIPE --set K=V ...` does before training:
// read the file, apply the overrides, then load a pipeline (every step
// validated, nothing run) or parse and resolve a stage recipe
// (learner/recipe.h, learner/pipeline.h). The input is the file and the
// override lines, split at the first NUL byte. Nothing is trained or written,
// and no plugin is loaded (inputs naming "plugins" are skipped).
#include <string>
#include <vector>

#include "common/config.h"
#include "fuzz/fuzz_support.h"
#include "learner/pipeline.h"
#include "learner/recipe.h"
#include "learner/stage.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  static const bool quiet = (fuzz::quiet_logging(), true);
  (void)quiet;
  const std::string_view text = fuzz::as_text(data, size);
  // A recipe's "plugins" key loads shared libraries: never from fuzzed input.
  if (text.find("plugins") != std::string_view::npos) return 0;
  const size_t nul = text.find('\0');
  const auto path = fuzz::write_temp_file("recipe.json", text.substr(0, nul));
  std::vector<std::string> overrides;
  if (nul != std::string_view::npos) {
    for (std::string_view line : fuzz::split_parts(text.substr(nul + 1), '\n'))
      overrides.emplace_back(line);
  }
  fuzz::accept_or_reject([&] {
    if (is_pipeline(read_json_file(path.string()))) {
      const Pipeline pipeline = load_pipeline(path.string(), overrides);
      (void)pipeline.resolved().dump();
      return;
    }
    nlohmann::json resolved;
    const Recipe recipe = load_recipe(path.string(), overrides, &resolved);
    (void)resolved.dump();
    for (const std::string& stage : registered_stages()) (void)recipe.has(stage);
  });
  return 0;
}
