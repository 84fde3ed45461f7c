// `sorting`: sort a list of integers ascending; the reference is the sorted
// list as "1, 2, 3" (score it with exact_match). The difficulty knob is the
// list's length.
#include <algorithm>

#include "common/config.h"
#include "environments/environment.h"

namespace r1kit {
namespace {

struct SortingOptions {
  int64_t length = 5;        // numbers to sort (the difficulty)
  int64_t max_value = 99;    // numbers are drawn from 0..max_value
  int64_t eval_size = 200;   // held-out tasks
  int64_t eval_seed = 1234;  // seed of the held-out split

  void visit(ConfigVisitor& v) {
    v.field("length", length, {.min = 2.0, .max = 1000.0});
    v.field("max_value", max_value, {.min = 1.0});
    v.field("eval_size", eval_size, {.min = 0.0});
    v.field("eval_seed", eval_seed, {.min = 0.0});
  }
};

std::string join(const std::vector<int64_t>& xs) {
  std::string out;
  for (int64_t x : xs) out += (out.empty() ? "" : ", ") + std::to_string(x);
  return out;
}

class SortingEnvironment : public GeneratedEnvironment {
 public:
  SortingEnvironment(const nlohmann::json& options, const std::string& source)
      : SortingEnvironment(read_config<SortingOptions>(options, source)) {}

 protected:
  Task generate(std::mt19937_64& rng) const override {
    std::vector<int64_t> numbers;
    for (int64_t i = 0; i < options_.length; ++i)
      numbers.push_back(uniform_int(rng, 0, options_.max_value));
    std::vector<int64_t> sorted = numbers;
    std::sort(sorted.begin(), sorted.end());
    Task task;
    task.prompt = "Sort these numbers in ascending order: " + join(numbers) +
                  ". Give the sorted numbers separated by commas, like \"1, 2, 3\".";
    task.reference = join(sorted);
    task.solution = "<think>\nThe smallest first: " + join(sorted) + "\n</think>\n<answer>" +
                    task.reference + "</answer>";
    task.metadata = {{"numbers", numbers}};
    return task;
  }

 private:
  explicit SortingEnvironment(SortingOptions options)
      : GeneratedEnvironment(options.eval_size, static_cast<uint64_t>(options.eval_seed)),
        options_(options) {}

  SortingOptions options_;
};

}  // namespace

REGISTER_ENVIRONMENT("sorting", SortingEnvironment);

}  // namespace r1kit
