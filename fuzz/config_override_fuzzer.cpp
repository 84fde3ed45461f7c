// Fuzzes `--set KEY.PATH=VALUE` overrides and the config reader
// (common/config.h): the input is a JSON document and override lines, split at
// the first NUL byte. Overrides apply to the document (or to a small recipe
// when it does not parse), which is then read into a config struct with every
// field kind, nested sections and a list, and written back.
#include <string>
#include <vector>

#include "common/config.h"
#include "fuzz/fuzz_support.h"

namespace {

struct Item {
  std::string name;
  double weight = 1.0;
  nlohmann::json options = nlohmann::json::object();
  void visit(r1kit::ConfigVisitor& v) {
    v.field("name", name, {.required = true});
    v.field("weight", weight, {.min = 0.0, .min_exclusive = true});
    v.field("options", options);
  }
};

struct Section {
  int64_t steps = 10;
  double rate = 0.5;
  bool flag = false;
  std::string mode = "auto";
  void visit(r1kit::ConfigVisitor& v) {
    v.field("steps", steps, {.min = 0.0, .max = 1e6});
    v.field("rate", rate, {.min = 0.0, .max = 1.0});
    v.field("flag", flag);
    v.field("mode", mode, {.choices = {"auto", "float32", "bfloat16"}});
  }
};

struct Config {
  std::string stage;
  int64_t seed = 0;
  std::vector<int64_t> ids;
  std::vector<double> weights;
  std::vector<std::string> names;
  Section section;
  std::vector<Item> items;
  void visit(r1kit::ConfigVisitor& v) {
    v.field("stage", stage, {.choices = {"sft", "grpo"}, .required = true});
    v.field("seed", seed, {.min = 0.0});
    v.field("ids", ids);
    v.field("weights", weights);
    v.field("names", names);
    v.section("section", section);
    v.list("items", items);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  const std::string_view text = fuzz::as_text(data, size);
  const size_t nul = text.find('\0');
  nlohmann::json document = nlohmann::json::parse(text.substr(0, nul), nullptr, false);
  if (document.is_discarded()) document = {{"stage", "grpo"}, {"section", {{"steps", 3}}}};
  std::vector<std::string> names;
  if (nul != std::string_view::npos) {
    for (std::string_view line : fuzz::split_parts(text.substr(nul + 1), '\n')) {
      fuzz::accept_or_reject([&] { apply_override(document, std::string(line)); });
      if (names.size() < 8) names.emplace_back(line.substr(0, line.find('=')));
    }
  }
  (void)did_you_mean(names.empty() ? "" : names.back(), names);
  fuzz::accept_or_reject([&] {
    Config config = read_config<Config>(document, "recipe.json");
    const nlohmann::json written = write_config(config);
    Config again = read_config<Config>(written, "written");
    if (write_config(again) != written) std::abort();
  });
  return 0;
}
