// `countdown`: numbers and a target; the answer is an expression checked by
// evaluation with exact rationals (Pan et al. 2025, TinyZero). The difficulty
// knob is how many numbers are given.
#include <algorithm>

#include "common/config.h"
#include "common/countdown_check.h"
#include "common/error.h"
#include "common/rational.h"
#include "environments/environment.h"

namespace r1kit {
namespace {

struct CountdownOptions {
  int64_t num_numbers = 4;    // numbers given (the difficulty)
  int64_t max_number = 100;   // numbers are drawn from 1..max_number
  int64_t max_target = 1000;  // targets lie in 1..max_target
  int64_t eval_size = 200;    // held-out tasks
  int64_t eval_seed = 1234;   // seed of the held-out split

  void visit(ConfigVisitor& v) {
    v.field("num_numbers", num_numbers, {.min = 2.0, .max = 8.0});
    v.field("max_number", max_number, {.min = 2.0, .max = 10000.0});
    v.field("max_target", max_target, {.min = 1.0});
    v.field("eval_size", eval_size, {.min = 0.0});
    v.field("eval_seed", eval_seed, {.min = 0.0});
  }
};

class CountdownEnvironment : public GeneratedEnvironment {
 public:
  CountdownEnvironment(const nlohmann::json& options, const std::string& source)
      : CountdownEnvironment(read_config<CountdownOptions>(options, source)) {}

  StepResult step(const Task& task, const std::vector<Turn>&,
                  const std::string& completion) const override {
    size_t open = completion.rfind("<answer>");
    size_t close = completion.rfind("</answer>");
    if (open == std::string::npos || close == std::string::npos || close < open)
      return {.reward = 0.0};
    std::string expression = completion.substr(open + 8, close - open - 8);
    // "(1 + 2) * 8 = 24": the part before "=" is the expression.
    expression = expression.substr(0, expression.find('='));
    CountdownVerdict verdict =
        check_countdown(expression, task.metadata["numbers"].get<std::vector<int64_t>>(),
                        task.metadata["target"].get<int64_t>());
    return {.reward = verdict.correct ? 1.0 : 0.0};
  }

 protected:
  // A target reached by a random expression over a random subset, so every task is solvable.
  Task generate(std::mt19937_64& rng) const override {
    while (true) {
      std::vector<int64_t> numbers;
      for (int64_t i = 0; i < options_.num_numbers; ++i)
        numbers.push_back(uniform_int(rng, 1, options_.max_number));
      std::vector<int64_t> order = numbers;
      std::shuffle(order.begin(), order.end(), rng);
      size_t used = static_cast<size_t>(uniform_int(rng, 2, options_.num_numbers));
      Rational value(order[0]);
      std::string expression = std::to_string(order[0]);
      bool ok = true;
      for (size_t i = 1; i < used && ok; ++i) {
        Rational next(order[i]);
        std::optional<Rational> result;
        char op = "+-*/"[uniform_int(rng, 0, 3)];
        if (op == '+') result = add(value, next);
        if (op == '-') result = sub(value, next);
        if (op == '*') result = mul(value, next);
        if (op == '/') result = div(value, next);
        ok = result.has_value();
        if (ok) value = *result;
        expression = "(" + expression + " " + op + " " + std::to_string(order[i]) + ")";
      }
      if (!ok || !value.is_integer() || value.num() < 1 || value.num() > options_.max_target)
        continue;
      std::string list;
      for (int64_t n : numbers) list += (list.empty() ? "" : ", ") + std::to_string(n);
      Task task;
      task.prompt =
          "Using the numbers [" + list + "], create an equation that equals " +
          std::to_string(value.num()) +
          ". You can use basic arithmetic operations (+, -, *, /) and each number can be used at "
          "most "
          "once. Show your work in <think> </think> tags. And return the final answer in <answer> "
          "</answer> tags, for example <answer> (1 + 2) / 3 </answer>.";
      task.reference = std::to_string(value.num());
      task.solution = "<think>\n" + expression + " = " + task.reference + "\n</think>\n<answer>" +
                      expression + "</answer>";
      task.metadata = {{"numbers", numbers}, {"target", value.num()}};
      return task;
    }
  }

 private:
  explicit CountdownEnvironment(CountdownOptions options)
      : GeneratedEnvironment(options.eval_size, static_cast<uint64_t>(options.eval_seed)),
        options_(options) {}

  CountdownOptions options_;
};

}  // namespace

REGISTER_ENVIRONMENT("countdown", CountdownEnvironment);

}  // namespace r1kit
