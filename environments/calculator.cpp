// `calculator`: a multi-turn tool environment. The task is arithmetic too long
// to do in one's head; the model may write <tool>expression</tool> and the
// environment answers <result>value</result> (exact, via
// common/arithmetic_expression.h), an observation the learner masks from the loss.
// The episode ends when a turn has no tool call or after max_tool_calls.
#include "common/arithmetic_expression.h"
#include "common/config.h"
#include "common/error.h"
#include "environments/environment.h"

namespace r1kit {
namespace {

struct CalculatorOptions {
  int64_t digits = 4;          // digits of each number (the difficulty)
  int64_t terms = 3;           // numbers in the expression
  int64_t max_tool_calls = 4;  // tool calls answered per episode
  int64_t eval_size = 200;     // held-out tasks
  int64_t eval_seed = 1234;    // seed of the held-out split

  void visit(ConfigVisitor& v) {
    v.field("digits", digits, {.min = 1.0, .max = 6.0});
    v.field("terms", terms, {.min = 2.0, .max = 6.0});
    v.field("max_tool_calls", max_tool_calls, {.min = 1.0});
    v.field("eval_size", eval_size, {.min = 0.0});
    v.field("eval_seed", eval_seed, {.min = 0.0});
  }
};

class CalculatorEnvironment : public GeneratedEnvironment {
 public:
  CalculatorEnvironment(const nlohmann::json& options, const std::string& source)
      : CalculatorEnvironment(read_config<CalculatorOptions>(options, source)) {}

  bool multi_turn() const override { return true; }

  StepResult step(const Task&, const std::vector<Turn>& history,
                  const std::string& completion) const override {
    int64_t calls = 0;
    for (const Turn& turn : history) calls += turn.observation ? 1 : 0;
    // A tool call ends the turn: the rollout stops generating at "</tool>".
    size_t close = completion.rfind("</tool>");
    size_t open = close == std::string::npos ? close : completion.rfind("<tool>", close);
    bool trailing_call = open != std::string::npos &&
                         completion.find_first_not_of(" \t\r\n", close + 7) == std::string::npos;
    if (!trailing_call || calls >= options_.max_tool_calls)
      return {.observation = "", .done = true};
    std::string result;
    try {
      Rational value = evaluate_expression(completion.substr(open + 6, close - open - 6)).value;
      result = value.to_string();
    } catch (const Error& e) {
      result = std::string("error: ") + e.what();
    }
    return {.observation = "<result>" + result + "</result>", .done = false};
  }

 protected:
  Task generate(std::mt19937_64& rng) const override {
    int64_t low = 1;
    for (int64_t i = 1; i < options_.digits; ++i) low *= 10;
    std::string expression = std::to_string(uniform_int(rng, low, low * 10 - 1));
    for (int64_t i = 1; i < options_.terms; ++i) {
      expression += std::string(" ") + "+-*"[uniform_int(rng, 0, 2)] + " " +
                    std::to_string(uniform_int(rng, low, low * 10 - 1));
    }
    Task task;
    task.prompt =
        "Compute " + expression +
        ". You may use a calculator: write <tool>expression</tool> and the result comes back as "
        "<result>value</result>. Give the final answer in <answer> </answer> tags.";
    task.reference = evaluate_expression(expression).value.to_string();
    task.metadata = {{"expression", expression}};
    return task;
  }

 private:
  explicit CalculatorEnvironment(CalculatorOptions options)
      : GeneratedEnvironment(options.eval_size, static_cast<uint64_t>(options.eval_seed)),
        options_(options) {}

  CalculatorOptions options_;
};

}  // namespace

REGISTER_ENVIRONMENT("calculator", CalculatorEnvironment);

}  // namespace r1kit
