// Fuzzes reading tasks from a JSONL data set (environments/jsonl_dataset.cpp,
// the `jsonl` environment): gsm8k, math, chat and prompt lines, bad lines
// skipped. The first input byte picks the format, the held-out share and
// strictness; the rest is the file. Tasks are drawn and the held-out split read.
#include <random>

#include "environments/environment.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  static const bool quiet = (fuzz::quiet_logging(), true);
  (void)quiet;
  if (size == 0) return 0;
  static const char* kFormats[] = {"auto", "gsm8k", "math", "chat", "prompt"};
  const uint8_t flags = data[0];
  const auto path = fuzz::write_temp_file("tasks.jsonl", fuzz::as_text(data + 1, size - 1));
  nlohmann::json options = {{"path", path.string()},
                            {"format", kFormats[flags % 5]},
                            {"eval_fraction", (flags & 0x08) ? 0.5 : 0.0},
                            {"max_eval", 8},
                            {"shuffle_buffer", 4},
                            {"strict", (flags & 0x10) != 0}};
  if (flags & 0x20) options["answer_key"] = "reference";
  fuzz::accept_or_reject([&] {
    auto environment = make_environment("jsonl", options, "recipe.json: environment.options");
    std::mt19937_64 rng(flags);
    for (const Task& task : environment->next_tasks(6, rng)) (void)task.metadata.dump();
    (void)environment->eval_tasks();
  });
  return 0;
}
