// `addition` and `multiplication`: multi-digit arithmetic with a difficulty
// knob (digits per operand) and, for SFT data, worked solutions in the R1
// format (column addition with carries; long multiplication by partial products).
#include <string>

#include "common/config.h"
#include "environments/environment.h"

namespace r1kit {
namespace {

struct ArithmeticOptions {
  int64_t digits = 3;         // digits of each operand (the difficulty)
  int64_t operands = 2;       // addition only: how many numbers are added
  bool worked_steps = false;  // fill Task::solution with a worked solution
  // addition only: "columns" spells out each place ("ones: 9 + 2 = 11, write 1,
  // carry 1"); "compact" writes one fixed-width line per place ("9+2+0=11").
  std::string solution_style = "columns";
  // Fraction of solutions that show their steps; the rest answer at once with
  // an empty <think></think>. 1 = all worked. A corpus mixing both is what a
  // base model learns from; RL can then find that showing the steps pays.
  double worked_fraction = 1.0;
  int64_t eval_size = 200;   // held-out tasks
  int64_t eval_seed = 1234;  // seed of the held-out split

  void visit(ConfigVisitor& v) {
    v.field("digits", digits, {.min = 1.0, .max = 9.0});
    v.field("operands", operands, {.min = 2.0, .max = 10.0});
    v.field("worked_steps", worked_steps);
    v.field("solution_style", solution_style, {.choices = {"columns", "compact"}});
    v.field("worked_fraction", worked_fraction, {.min = 0.0, .max = 1.0});
    v.field("eval_size", eval_size, {.min = 0.0});
    v.field("eval_seed", eval_seed, {.min = 0.0});
  }
};

int64_t random_number(std::mt19937_64& rng, int64_t digits) {
  int64_t low = 1;
  for (int64_t i = 1; i < digits; ++i) low *= 10;
  return uniform_int(rng, digits == 1 ? 0 : low, low * 10 - 1);
}

// A number in [0, 1) fixed by `values` (splitmix64 over them).
double unit_hash(const std::vector<int64_t>& values) {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int64_t n : values) {
    state += static_cast<uint64_t>(n) * 0xbf58476d1ce4e5b9ull + 0x9e3779b97f4a7c15ull;
    state = (state ^ (state >> 30)) * 0xbf58476d1ce4e5b9ull;
    state = (state ^ (state >> 27)) * 0x94d049bb133111ebull;
    state ^= state >> 31;
  }
  return static_cast<double>(state >> 11) / 9007199254740992.0;  // 2^53
}

std::string r1_solution(const std::string& steps, const std::string& answer) {
  return "<think>\n" + steps + "</think>\n<answer>" + answer + "</answer>";
}

class AdditionEnvironment : public GeneratedEnvironment {
 public:
  AdditionEnvironment(const nlohmann::json& options, const std::string& source)
      : AdditionEnvironment(read_config<ArithmeticOptions>(options, source)) {}

 protected:
  Task generate(std::mt19937_64& rng) const override {
    std::vector<int64_t> numbers;
    int64_t total = 0;
    std::string question;
    for (int64_t i = 0; i < options_.operands; ++i) {
      numbers.push_back(random_number(rng, options_.digits));
      total += numbers.back();
      question += (i == 0 ? "" : " + ") + std::to_string(numbers.back());
    }
    Task task{.prompt = "What is " + question + "?", .reference = std::to_string(total)};
    task.metadata = {{"numbers", numbers}};
    if (options_.worked_steps) {
      // Decided without advancing `rng`, so the task stream (and with it the
      // held-out split and what training excludes) is the same whatever
      // worked_steps and worked_fraction are: a hash of the numbers and of the
      // generator's next output, so one problem drawn twice may get both styles.
      std::vector<int64_t> key = numbers;
      key.push_back(static_cast<int64_t>(std::mt19937_64(rng)()));
      bool show_steps =
          options_.worked_fraction >= 1.0 || unit_hash(key) < options_.worked_fraction;
      std::string steps;
      if (show_steps)
        steps =
            options_.solution_style == "compact" ? compact_steps(numbers) : column_steps(numbers);
      task.solution = r1_solution(steps, task.reference);
    }
    return task;
  }

 private:
  explicit AdditionEnvironment(ArithmeticOptions options)
      : GeneratedEnvironment(options.eval_size, static_cast<uint64_t>(options.eval_seed)),
        options_(options) {}

  // Column by column from the ones, with the carry.
  static std::string column_steps(const std::vector<int64_t>& numbers) {
    static const char* kPlaces[] = {"ones", "tens", "hundreds", "thousands"};
    std::string steps;
    int64_t carry = 0;
    std::vector<int64_t> rest = numbers;
    for (int place = 0;; ++place) {
      bool any = carry > 0;
      for (int64_t n : rest) any = any || n > 0;
      if (!any) break;
      int64_t sum = carry;
      std::string terms = carry > 0 ? std::to_string(carry) + " (carry)" : "";
      for (int64_t& n : rest) {
        int64_t digit = n % 10;
        n /= 10;
        sum += digit;
        terms += (terms.empty() ? "" : " + ") + std::to_string(digit);
      }
      std::string name = place < 4 ? kPlaces[place] : "10^" + std::to_string(place);
      steps += name + ": " + terms + " = " + std::to_string(sum) + ", write " +
               std::to_string(sum % 10) + ", carry " + std::to_string(sum / 10) + "\n";
      carry = sum / 10;
    }
    return steps;
  }

  // One fixed-width line per place from the ones: the digits, then the carry
  // in, then the sum in two digits ("9+2+0=11", "5+9+1=15"). Fixed width puts
  // every digit a line needs at the same distance on every task, which a small
  // model with relative positions finds far easier to learn than ragged lines.
  static std::string compact_steps(const std::vector<int64_t>& numbers) {
    std::string steps;
    int64_t carry = 0;
    std::vector<int64_t> rest = numbers;
    for (;;) {
      bool any = false;
      for (int64_t n : rest) any = any || n > 0;
      if (!any) break;
      int64_t sum = carry;
      std::string terms;
      for (int64_t& n : rest) {
        sum += n % 10;
        terms += std::to_string(n % 10) + "+";
        n /= 10;
      }
      steps +=
          terms + std::to_string(carry) + "=" + (sum < 10 ? "0" : "") + std::to_string(sum) + "\n";
      carry = sum / 10;
    }
    return steps;
  }

  ArithmeticOptions options_;
};

class MultiplicationEnvironment : public GeneratedEnvironment {
 public:
  MultiplicationEnvironment(const nlohmann::json& options, const std::string& source)
      : MultiplicationEnvironment(read_config<ArithmeticOptions>(options, source)) {}

 protected:
  Task generate(std::mt19937_64& rng) const override {
    int64_t a = random_number(rng, options_.digits);
    int64_t b = random_number(rng, options_.digits);
    Task task{.prompt = "What is " + std::to_string(a) + " * " + std::to_string(b) + "?",
              .reference = std::to_string(a * b)};
    task.metadata = {{"numbers", {a, b}}};
    if (options_.worked_steps) {
      std::string steps;
      int64_t place = 1, total = 0;
      for (int64_t rest = b; rest > 0 || place == 1; rest /= 10, place *= 10) {
        int64_t part = a * (rest % 10) * place;
        steps += std::to_string(a) + " * " + std::to_string((rest % 10) * place) + " = " +
                 std::to_string(part) + "\n";
        total += part;
        if (rest == 0) break;
      }
      steps += "sum of the partial products: " + std::to_string(total) + "\n";
      task.solution = r1_solution(steps, task.reference);
    }
    return task;
  }

 private:
  explicit MultiplicationEnvironment(ArithmeticOptions options)
      : GeneratedEnvironment(options.eval_size, static_cast<uint64_t>(options.eval_seed)),
        options_(options) {}

  ArithmeticOptions options_;
};

}  // namespace

REGISTER_ENVIRONMENT("addition", AdditionEnvironment);
REGISTER_ENVIRONMENT("multiplication", MultiplicationEnvironment);

}  // namespace r1kit
