// `linear_equation`: solve a x + b = c (or a x + b = c x + d with both_sides)
// for x. Solutions are integers, or exact fractions written \frac{p}{q} when
// integer_solutions is off (score with math_answer). The difficulty knobs are
// the coefficient range and x on both sides.
#include "common/config.h"
#include "common/rational.h"
#include "environments/environment.h"

namespace r1kit {
namespace {

struct LinearOptions {
  int64_t max_coefficient = 10;   // |a|, |b|, |c|, |d| and |x| up to this
  bool both_sides = false;        // x appears on both sides
  bool integer_solutions = true;  // false: x may be a fraction
  int64_t eval_size = 200;        // held-out tasks
  int64_t eval_seed = 1234;       // seed of the held-out split

  void visit(ConfigVisitor& v) {
    v.field("max_coefficient", max_coefficient, {.min = 2.0, .max = 1000000.0});
    v.field("both_sides", both_sides);
    v.field("integer_solutions", integer_solutions);
    v.field("eval_size", eval_size, {.min = 0.0});
    v.field("eval_seed", eval_seed, {.min = 0.0});
  }
};

// "3x", "-x", "x"
std::string x_term(int64_t a) {
  if (a == 1) return "x";
  if (a == -1) return "-x";
  return std::to_string(a) + "x";
}

std::string plus(int64_t b) {
  return b < 0 ? " - " + std::to_string(-b) : " + " + std::to_string(b);
}

class LinearEquationEnvironment : public GeneratedEnvironment {
 public:
  LinearEquationEnvironment(const nlohmann::json& options, const std::string& source)
      : LinearEquationEnvironment(read_config<LinearOptions>(options, source)) {}

 protected:
  Task generate(std::mt19937_64& rng) const override {
    const int64_t m = options_.max_coefficient;
    auto nonzero = [&] {
      int64_t v = uniform_int(rng, 1, m);
      return uniform_int(rng, 0, 1) ? v : -v;
    };
    int64_t a = nonzero(), b = uniform_int(rng, -m, m);
    int64_t c = options_.both_sides ? nonzero() : 0;
    while (c == a) c = nonzero();
    // Solve (a - c) x = d - b.
    Rational x;
    int64_t d;
    if (options_.integer_solutions) {
      int64_t xi = uniform_int(rng, -m, m);
      d = (a - c) * xi + b;
      x = Rational(xi);
    } else {
      d = uniform_int(rng, -m, m);
      x = *Rational::make(d - b, a - c);
    }
    std::string right = options_.both_sides ? x_term(c) + plus(d) : std::to_string(d);
    Task task;
    task.prompt = "Solve for x: " + x_term(a) + (b == 0 ? "" : plus(b)) + " = " + right;
    task.reference = x.is_integer() ? x.to_string()
                                    : (x.num() < 0 ? "-" : "") + std::string("\\frac{") +
                                          std::to_string(std::abs(x.num())) + "}{" +
                                          std::to_string(x.den()) + "}";
    task.solution = "<think>\n" + std::to_string(a - c) + "x = " + std::to_string(d - b) +
                    ", so x = " + task.reference + "\n</think>\n<answer>" + task.reference +
                    "</answer>";
    task.metadata = {{"a", a}, {"b", b}, {"c", c}, {"d", d}};
    return task;
  }

 private:
  explicit LinearEquationEnvironment(LinearOptions options)
      : GeneratedEnvironment(options.eval_size, static_cast<uint64_t>(options.eval_seed)),
        options_(options) {}

  LinearOptions options_;
};

}  // namespace

REGISTER_ENVIRONMENT("linear_equation", LinearEquationEnvironment);

}  // namespace r1kit
