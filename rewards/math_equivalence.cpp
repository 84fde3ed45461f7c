#include "rewards/math_equivalence.h"

#include <array>
#include <bitset>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "common/rational.h"
#include "rewards/answer_extraction.h"

namespace r1kit {
namespace {

// ---------------------------------------------------------------- normalising

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Removes or renames a LaTeX command, never a longer one (\left, not \leftarrow).
void replace_command(std::string& s, std::string_view command, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(command, pos)) != std::string::npos) {
    size_t end = pos + command.size();
    if (is_alpha(command.back()) && end < s.size() && is_alpha(s[end])) {
      pos = end;
      continue;
    }
    s.replace(pos, command.size(), to);
    pos += to.size();
  }
}

bool is_unit_word(std::string_view word) {
  static const std::array<std::string_view, 56> kUnits = {
      "cm",     "mm",      "km",    "m",      "meter",   "meters", "metre",  "metres",
      "inch",   "inches",  "in",    "ft",     "foot",    "feet",   "yard",   "yards",
      "mile",   "miles",   "mi",    "unit",   "units",   "sq",     "square", "cubic",
      "degree", "degrees", "deg",   "dollar", "dollars", "cent",   "cents",  "hour",
      "hours",  "hr",      "hrs",   "minute", "minutes", "min",    "second", "seconds",
      "sec",    "day",     "days",  "week",   "weeks",   "year",   "years",  "kg",
      "gram",   "grams",   "pound", "pounds", "lb",      "lbs",    "liters", "mph"};
  std::string lower;
  for (char c : word) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view unit : kUnits) {
    if (lower == unit) return true;
  }
  return false;
}

// \text{cm} and friends: units vanish, any other text keeps its letters (so
// "3 \text{ or } 4" still reads as something other than a number).
void unwrap_text_commands(std::string& s) {
  for (std::string_view command :
       {"\\text", "\\textbf", "\\textrm", "\\mathrm", "\\mbox", "\\mathbf"}) {
    size_t pos = 0;
    while ((pos = s.find(command, pos)) != std::string::npos) {
      size_t open = pos + command.size();
      if (open < s.size() && is_alpha(s[open])) {
        pos = open;
        continue;
      }
      while (open < s.size() && s[open] == ' ') ++open;
      if (open >= s.size() || s[open] != '{') {
        pos = open;
        continue;
      }
      size_t close = s.find('}', open);
      if (close == std::string::npos) return;
      std::string inner(trim(std::string_view(s).substr(open + 1, close - open - 1)));
      bool unit = !inner.empty();
      size_t word_start = 0;
      for (size_t i = 0; i <= inner.size(); ++i) {  // every word must be a unit ("square feet")
        if (i == inner.size() || inner[i] == ' ') {
          if (i > word_start &&
              !is_unit_word(std::string_view(inner).substr(word_start, i - word_start)))
            unit = false;
          word_start = i + 1;
        }
      }
      std::string replacement = unit || inner.empty() ? " " : " " + inner + " ";
      s.replace(pos, close + 1 - pos, replacement);
      pos += replacement.size();
    }
  }
}

// "12 cm", "5 square feet", "7 dollars": trailing unit words after a value.
void drop_trailing_units(std::string& s) {
  for (int round = 0; round < 3; ++round) {
    size_t end = s.size();
    while (end > 0 && s[end - 1] == ' ') --end;
    // an exponent on the unit: cm^2, cm^{3}
    size_t word_end = end;
    if (word_end >= 2 && s[word_end - 2] == '^' && is_digit(s[word_end - 1])) word_end -= 2;
    if (word_end >= 4 && s.compare(word_end - 4, 2, "^{") == 0 && s[word_end - 1] == '}')
      word_end -= 4;
    size_t word_start = word_end;
    while (word_start > 0 && is_alpha(s[word_start - 1])) --word_start;
    if (word_start == word_end || word_end - word_start < 2) return;
    if (word_start == 0 || s[word_start - 1] == '\\') return;  // the whole answer, or a command
    char before = s[word_start - 1];
    if (before != ' ' && !is_digit(before) && before != '}') return;
    if (!is_unit_word(std::string_view(s).substr(word_start, word_end - word_start))) return;
    s.erase(word_start);
  }
}

// "1,234,567" -> "1234567" when the whole answer is one grouped number.
void drop_thousands_separators(std::string& s) {
  replace_all(s, "{,}", "");
  size_t i = 0;
  bool negative = !s.empty() && s[0] == '-';
  if (negative) i = 1;
  size_t first = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  size_t lead = i - first;
  if (lead == 0 || lead > 3 || i >= s.size() || s[i] != ',') return;
  std::string digits = s.substr(0, i);
  while (i < s.size() && s[i] == ',') {
    if (i + 4 > s.size()) return;
    for (size_t j = 1; j <= 3; ++j) {
      if (!is_digit(s[i + j])) return;
    }
    if (i + 4 < s.size() && is_digit(s[i + 4])) return;
    digits += s.substr(i + 1, 3);
    i += 4;
  }
  if (i < s.size() && s[i] == '.') {
    digits += s.substr(i);
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (!is_digit(s[j])) return;
    }
  } else if (i != s.size()) {
    return;
  }
  s = digits;
}

// -------------------------------------------------------------------- parsing

enum class Op : uint8_t {
  kNum,
  kReal,
  kVar,
  kPi,
  kInf,
  kNeg,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kPow,
  kSqrt,
  kRoot
};

struct Node {
  Op op;
  int a = -1;  // first operand (or the radicand of kRoot)
  int b = -1;  // second operand (or the index of kRoot)
  Rational num;
  double real = 0.0;
  int var = 0;
  int decimals = -1;  // a number literal: digits after the point (0 = integer)
};

struct Expr {
  std::vector<Node> nodes;
  int root = -1;
  std::bitset<68> vars;       // bit per variable used: a-z, A-Z, then kGreek
  int literal_decimals = -1;  // the whole expression is a literal with this many decimals
};

enum class Shape : uint8_t { kScalar, kTuple, kInterval, kSet, kList, kUnion };

struct Answer {
  Shape shape = Shape::kScalar;
  char open = 0, close = 0;                     // brackets of a tuple or interval
  std::vector<Expr> items;                      // kUnion: two per interval
  std::vector<std::pair<char, char>> brackets;  // kUnion: per interval
};

struct ParseFailure {};

constexpr std::array<std::string_view, 16> kGreek = {
    "alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu",
    "nu",    "rho",  "sigma", "tau",   "phi",     "chi",   "psi",    "omega"};
// Variable ids: 0-25 a-z, 26-51 A-Z, then the Greek letters.
constexpr size_t kVariables = 52 + kGreek.size();
static_assert(kVariables == decltype(Expr::vars)().size());

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Expr parse_whole() {
    Expr expr = parse_expression();
    skip();
    if (i_ != s_.size()) throw ParseFailure{};
    return expr;
  }

  Expr parse_expression() {
    expr_ = Expr{};
    expr_.root = sum();
    if (expr_.root >= 0 && literal_root_decimals_ >= 0)
      expr_.literal_decimals = literal_root_decimals_;
    return std::move(expr_);
  }

 private:
  void skip() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  bool eat(std::string_view token) {
    skip();
    if (s_.substr(i_, token.size()) != token) return false;
    if (is_alpha(token.back()) && i_ + token.size() < s_.size() && is_alpha(s_[i_ + token.size()]))
      return false;
    i_ += token.size();
    return true;
  }
  int add(Node node) {
    expr_.nodes.push_back(node);
    return static_cast<int>(expr_.nodes.size() - 1);
  }
  int binary(Op op, int a, int b) { return add(Node{.op = op, .a = a, .b = b}); }

  struct Depth {
    explicit Depth(int& d) : d_(d) {
      if (++d_ > 64) throw ParseFailure{};
    }
    ~Depth() { --d_; }
    int& d_;
  };

  int sum() {
    Depth guard(depth_);
    int left = product();
    int terms = 1;
    while (true) {
      skip();
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) {
        Op op = s_[i_] == '+' ? Op::kAdd : Op::kSub;
        ++i_;
        left = binary(op, left, product());
        ++terms;
      } else {
        break;
      }
    }
    if (terms > 1) literal_root_decimals_ = -1;
    return left;
  }

  int product() {
    int left = unary();
    while (true) {
      skip();
      if (i_ >= s_.size()) break;
      Op op;
      if (eat("*") || eat("\\cdot") || eat("\\times")) {
        op = Op::kMul;
      } else if (eat("/") || eat("\\div")) {
        op = Op::kDiv;
      } else if (starts_implicit_factor()) {
        // 2\frac{1}{2} is the mixed number 2 1/2, as in MATH's answers.
        const Node& l = expr_.nodes[left];
        if (l.op == Op::kNum && l.decimals == 0 && s_.substr(i_, 5) == "\\frac") {
          size_t mark = i_;
          int frac = unary();
          const Node& f = expr_.nodes[frac];
          if (f.op == Op::kDiv && expr_.nodes[f.a].op == Op::kNum &&
              expr_.nodes[f.b].op == Op::kNum) {
            left = binary(Op::kAdd, left, frac);
            literal_root_decimals_ = -1;
            continue;
          }
          i_ = mark;
        }
        op = Op::kMul;
      } else {
        break;
      }
      left = binary(op, left, unary());
      literal_root_decimals_ = -1;
    }
    return left;
  }

  // A factor written right after another with no operator: 2\pi, 3x, 2(x+1).
  // Two numbers side by side ("3 4") are not a product: they are two answers.
  bool starts_implicit_factor() {
    char c = s_[i_];
    if (c == '(' || is_alpha(c)) return true;
    if (c == '\\') {
      size_t j = i_ + 1;
      while (j < s_.size() && is_alpha(s_[j])) ++j;
      std::string_view name = s_.substr(i_ + 1, j - i_ - 1);
      if (name == "frac" || name == "sqrt" || name == "pi" || name == "infty") return true;
      for (std::string_view g : kGreek) {
        if (name == g) return true;
      }
    }
    return false;
  }

  int unary() {
    Depth guard(depth_);
    skip();
    if (i_ < s_.size() && s_[i_] == '-') {
      ++i_;
      int inner = unary();
      return add(Node{.op = Op::kNeg, .a = inner});
    }
    if (i_ < s_.size() && s_[i_] == '+') {
      ++i_;
      return unary();
    }
    return power();
  }

  int power() {
    int base = atom();
    skip();
    if (i_ < s_.size() && s_[i_] == '^') {
      ++i_;
      skip();
      int exponent;
      if (i_ < s_.size() && s_[i_] == '{') {
        ++i_;
        exponent = sum();
        if (!eat("}")) throw ParseFailure{};
      } else if (i_ < s_.size() && s_[i_] == '-') {
        ++i_;
        exponent = add(Node{.op = Op::kNeg, .a = power()});
      } else {
        exponent = power();
      }
      literal_root_decimals_ = -1;
      return binary(Op::kPow, base, exponent);
    }
    return base;
  }

  // One argument of \frac or \sqrt: {expr}, or a single digit, letter or command.
  int argument() {
    skip();
    if (i_ >= s_.size()) throw ParseFailure{};
    if (s_[i_] == '{') {
      ++i_;
      int inner = sum();
      if (!eat("}")) throw ParseFailure{};
      return inner;
    }
    if (is_digit(s_[i_])) {
      int64_t digit = s_[i_++] - '0';
      return add(Node{.op = Op::kNum, .num = Rational(digit), .decimals = 0});
    }
    return atom();
  }

  int atom() {
    Depth guard(depth_);
    skip();
    if (i_ >= s_.size()) throw ParseFailure{};
    char c = s_[i_];
    bool first_atom = expr_.nodes.empty();
    if (is_digit(c) || c == '.') return number(first_atom);
    literal_root_decimals_ = -1;
    if (c == '(' || c == '{') {
      char close = c == '(' ? ')' : '}';
      ++i_;
      int inner = sum();
      if (!eat(std::string_view(&close, 1))) throw ParseFailure{};
      return inner;
    }
    if (c == '\\') {
      int node = command();
      literal_root_decimals_ = -1;  // \frac{1}{3} is not the literal 1
      return node;
    }
    if (is_alpha(c)) {
      if (eat("sqrt")) {
        if (!eat("(")) throw ParseFailure{};
        int inner = sum();
        if (!eat(")")) throw ParseFailure{};
        return add(Node{.op = Op::kSqrt, .a = inner});
      }
      if (eat("pi")) return add(Node{.op = Op::kPi});
      // Three letters in a row are a word, not a product of variables: such
      // answers compare as text ("Monday" is not "dynaMo").
      if (i_ + 2 < s_.size() && is_alpha(s_[i_ + 1]) && is_alpha(s_[i_ + 2])) throw ParseFailure{};
      ++i_;
      int var = std::isupper(static_cast<unsigned char>(c)) ? 26 + (c - 'A') : c - 'a';
      expr_.vars.set(var);
      return add(Node{.op = Op::kVar, .var = var});
    }
    throw ParseFailure{};
  }

  int number(bool first_atom) {
    size_t start = i_;
    while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    int decimals = 0;
    if (i_ < s_.size() && s_[i_] == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1])) {
      ++i_;
      size_t frac_start = i_;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
      decimals = static_cast<int>(i_ - frac_start);
    } else if (i_ < s_.size() && s_[i_] == '.' && i_ + 1 < s_.size() && s_[i_ + 1] != ' ') {
      throw ParseFailure{};  // "3.x"
    } else if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;  // "3." is 3
    }
    std::string_view text = s_.substr(start, i_ - start);
    if (text == "." || text.empty()) throw ParseFailure{};
    if (first_atom) literal_root_decimals_ = decimals;
    std::string digits;
    for (char d : text) {
      if (is_digit(d)) digits += d;
    }
    while (digits.size() > 1 && digits[0] == '0') digits.erase(0, 1);
    if (digits.size() <= 18 && decimals <= 18) {
      int64_t value = std::stoll(digits);
      int64_t scale = 1;
      for (int k = 0; k < decimals; ++k) scale *= 10;
      return add(Node{.op = Op::kNum, .num = *Rational::make(value, scale), .decimals = decimals});
    }
    return add(Node{.op = Op::kReal,
                    .real = std::strtod(std::string(text).c_str(), nullptr),
                    .decimals = decimals});
  }

  int command() {
    size_t j = i_ + 1;
    while (j < s_.size() && is_alpha(s_[j])) ++j;
    std::string_view name = s_.substr(i_ + 1, j - i_ - 1);
    i_ = j;
    if (name == "frac") {
      int top = argument();
      int bottom = argument();
      return binary(Op::kDiv, top, bottom);
    }
    if (name == "sqrt") {
      skip();
      if (i_ < s_.size() && s_[i_] == '[') {
        ++i_;
        int index = sum();
        if (!eat("]")) throw ParseFailure{};
        int radicand = argument();
        return binary(Op::kRoot, radicand, index);
      }
      return add(Node{.op = Op::kSqrt, .a = argument()});
    }
    if (name == "pi") return add(Node{.op = Op::kPi});
    if (name == "infty" || name == "inf") return add(Node{.op = Op::kInf});
    for (size_t g = 0; g < kGreek.size(); ++g) {
      if (name == kGreek[g]) {
        int var = 52 + static_cast<int>(g);
        expr_.vars.set(var);
        return add(Node{.op = Op::kVar, .var = var});
      }
    }
    throw ParseFailure{};  // \pm, \approx, \ldots, ...: not a single value
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
  int literal_root_decimals_ = -1;
  Expr expr_;
};

// --------------------------------------------------------------- evaluating

struct Num {
  bool exact = false;
  Rational r;
  double d = 0.0;
};

Num exact_num(const Rational& r) { return Num{true, r, r.to_double()}; }
Num real_num(double d) { return Num{false, Rational(), d}; }

std::optional<Rational> exact_root(const Rational& r, int64_t n) {
  if (n < 1 || (r.num() < 0 && n % 2 == 0)) return std::nullopt;
  auto int_root = [n](int64_t x) -> std::optional<int64_t> {
    bool negative = x < 0;
    double guess =
        std::round(std::pow(std::fabs(static_cast<double>(x)), 1.0 / static_cast<double>(n)));
    for (int64_t c = static_cast<int64_t>(guess) - 1; c <= static_cast<int64_t>(guess) + 1; ++c) {
      if (c < 0) continue;
      std::optional<Rational> p = pow(Rational(c), n);
      if (p && p->num() == (negative ? -x : x)) return negative ? -c : c;
    }
    return std::nullopt;
  };
  std::optional<int64_t> top = int_root(r.num());
  std::optional<int64_t> bottom = int_root(r.den());
  if (!top || !bottom) return std::nullopt;
  return Rational::make(*top, *bottom);
}

// Evaluates node `k` with variables set to `point` (indexed by variable id).
Num evaluate(const Expr& e, int k, const std::array<double, kVariables>& point) {
  const Node& n = e.nodes[k];
  switch (n.op) {
    case Op::kNum:
      return exact_num(n.num);
    case Op::kReal:
      return real_num(n.real);
    case Op::kVar:
      return real_num(point[n.var]);
    case Op::kPi:
      return real_num(M_PI);
    case Op::kInf:
      return real_num(INFINITY);
    case Op::kNeg: {
      Num a = evaluate(e, n.a, point);
      return a.exact ? exact_num(*sub(Rational(0), a.r)) : real_num(-a.d);
    }
    case Op::kSqrt: {
      Num a = evaluate(e, n.a, point);
      if (a.exact) {
        if (std::optional<Rational> root = exact_root(a.r, 2)) return exact_num(*root);
      }
      return real_num(std::sqrt(a.d));
    }
    case Op::kRoot: {
      Num a = evaluate(e, n.a, point);
      Num index = evaluate(e, n.b, point);
      if (a.exact && index.exact && index.r.is_integer()) {
        if (std::optional<Rational> root = exact_root(a.r, index.r.num())) return exact_num(*root);
      }
      if (a.d < 0 && index.exact && index.r.is_integer() && index.r.num() % 2 == 1) {
        return real_num(-std::pow(-a.d, 1.0 / index.d));
      }
      return real_num(std::pow(a.d, 1.0 / index.d));
    }
    default:
      break;
  }
  Num a = evaluate(e, n.a, point);
  Num b = evaluate(e, n.b, point);
  if (a.exact && b.exact) {
    std::optional<Rational> r;
    switch (n.op) {
      case Op::kAdd:
        r = add(a.r, b.r);
        break;
      case Op::kSub:
        r = sub(a.r, b.r);
        break;
      case Op::kMul:
        r = mul(a.r, b.r);
        break;
      case Op::kDiv:
        if (b.r.num() == 0) return real_num(NAN);
        r = div(a.r, b.r);
        break;
      case Op::kPow:
        if (b.r.is_integer() && b.r.num() <= 4096 && b.r.num() >= -4096) r = pow(a.r, b.r.num());
        break;
      default:
        break;
    }
    if (r) return exact_num(*r);
  }
  switch (n.op) {
    case Op::kAdd:
      return real_num(a.d + b.d);
    case Op::kSub:
      return real_num(a.d - b.d);
    case Op::kMul:
      return real_num(a.d * b.d);
    case Op::kDiv:
      return real_num(b.d == 0.0 ? NAN : a.d / b.d);
    case Op::kPow:
      return real_num(std::pow(a.d, b.d));
    default:
      return real_num(NAN);
  }
}

bool close_enough(double p, double r, double tolerance) {
  if (std::isnan(p) || std::isnan(r)) return false;
  if (std::isinf(p) || std::isinf(r)) return p == r;
  if (r == 0.0) return std::fabs(p) <= 1e-12;
  return std::fabs(p - r) <= tolerance * std::fabs(r);
}

bool scalars_equal(const Expr& p, const Expr& r, double tolerance) {
  if (p.vars != r.vars) return false;
  std::array<double, kVariables> point{};
  if (r.vars.none()) {
    Num a = evaluate(p, p.root, point);
    Num b = evaluate(r, r.root, point);
    if (a.exact && b.exact && a.r == b.r) return true;
    if (std::isinf(a.d) || std::isinf(b.d) || std::isnan(a.d) || std::isnan(b.d)) {
      return !std::isnan(a.d) && a.d == b.d;
    }
    // Asymmetric: a decimal reference accepts a non-literal prediction that rounds to it.
    if (r.literal_decimals > 0 && p.literal_decimals < 0) {
      if (std::fabs(a.d - b.d) <= 0.5 * std::pow(10.0, -r.literal_decimals) * (1 + 1e-9))
        return true;
    }
    if (a.exact && b.exact) {
      // Integers and fractions are exact; a written decimal may be off by rounding.
      if (p.literal_decimals <= 0 && r.literal_decimals <= 0) return false;
      return std::fabs(a.d - b.d) <= tolerance;
    }
    return close_enough(a.d, b.d, tolerance);
  }
  // Polynomial identity testing: the same values at several fixed points.
  static constexpr std::array<double, 7> kValues = {1.3178,  -0.5531, 2.7183, 0.4142,
                                                    -1.8812, 3.3019,  0.9137};
  int agreed = 0;
  for (int trial = 0; trial < 5; ++trial) {
    for (size_t v = 0; v < kVariables; ++v)
      point[v] = kValues[(trial * 3 + v * 5) % kValues.size()] + 0.013 * v;
    double a = evaluate(p, p.root, point).d;
    double b = evaluate(r, r.root, point).d;
    if (!std::isfinite(a) || !std::isfinite(b)) continue;
    if (!close_enough(a, b, 1e-9) && std::fabs(a - b) > 1e-12) return false;
    ++agreed;
  }
  return agreed >= 3;
}

// Positions of top-level (bracket depth 0) occurrences of `token` in `s`.
std::vector<size_t> top_level(std::string_view s, std::string_view token) {
  std::vector<size_t> hits;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && s.substr(i, token.size()) == token) hits.push_back(i);
  }
  return hits;
}

std::vector<std::string_view> split(std::string_view s, const std::vector<size_t>& at,
                                    size_t width) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t pos : at) {
    parts.push_back(trim(s.substr(start, pos - start)));
    start = pos + width;
  }
  parts.push_back(trim(s.substr(start)));
  return parts;
}

bool is_variable_name(std::string_view s) {
  if (s.size() == 1) return is_alpha(s[0]);
  if (s.size() > 1 && s[0] == '\\') {
    for (std::string_view g : kGreek) {
      if (s.substr(1) == g) return true;
    }
  }
  return false;
}

// The bracket pair that encloses all of `s`, or 0s.
std::pair<char, char> enclosing(std::string_view s) {
  if (s.size() < 2) return {0, 0};
  char open = s.front(), close = s.back();
  if ((open != '(' && open != '[') || (close != ')' && close != ']')) return {0, 0};
  int depth = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '(' || s[i] == '[' || s[i] == '{') ++depth;
    if (s[i] == ')' || s[i] == ']' || s[i] == '}') --depth;
    if (depth == 0) return {0, 0};  // closes before the end: "(1)(2)"
  }
  return {open, close};
}

Expr parse_expr(std::string_view s) { return Parser(s).parse_whole(); }

std::optional<Answer> parse_answer(std::string_view s) {
  try {
    // "x = 5", "y = 2x+1", "x \in [1, 2]": drop a single-variable left side.
    std::vector<size_t> equals = top_level(s, "=");
    if (!equals.empty()) {
      std::string_view lhs = trim(s.substr(0, equals.front()));
      if (!is_variable_name(lhs) || equals.size() > 1) return std::nullopt;
      s = trim(s.substr(equals.front() + 1));
    }
    std::vector<size_t> member = top_level(s, "\\in ");
    if (member.size() == 1 && is_variable_name(trim(s.substr(0, member[0]))))
      s = trim(s.substr(member[0] + 4));
    if (s.empty()) return std::nullopt;

    Answer answer;
    std::vector<size_t> unions = top_level(s, "\\cup");
    if (!unions.empty()) {
      answer.shape = Shape::kUnion;
      for (std::string_view part : split(s, unions, 4)) {
        auto [open, close] = enclosing(part);
        if (!open) return std::nullopt;
        std::string_view inner = part.substr(1, part.size() - 2);
        std::vector<std::string_view> ends = split(inner, top_level(inner, ","), 1);
        if (ends.size() != 2) return std::nullopt;
        answer.items.push_back(parse_expr(ends[0]));
        answer.items.push_back(parse_expr(ends[1]));
        answer.brackets.emplace_back(open, close);
      }
      return answer;
    }
    std::string_view inner = s;
    if (s.size() >= 4 && s.substr(0, 2) == "\\{" && s.substr(s.size() - 2) == "\\}") {
      answer.shape = Shape::kSet;
      inner = s.substr(2, s.size() - 4);
    } else if (auto [open, close] = enclosing(s);
               open && !top_level(s.substr(1, s.size() - 2), ",").empty()) {
      answer.shape = (open == '(' && close == ')') ? Shape::kTuple : Shape::kInterval;
      if (answer.shape == Shape::kInterval &&
          top_level(s.substr(1, s.size() - 2), ",").size() != 1) {
        answer.shape = Shape::kTuple;  // [1, 2, 3]: a list in square brackets
      }
      answer.open = open;
      answer.close = close;
      inner = s.substr(1, s.size() - 2);
    }
    std::vector<size_t> commas = top_level(inner, ",");
    if (answer.shape == Shape::kScalar && !commas.empty()) answer.shape = Shape::kList;
    for (std::string_view part : split(inner, commas, 1)) {
      if (part.empty()) return std::nullopt;
      answer.items.push_back(parse_expr(part));
    }
    return answer;
  } catch (const ParseFailure&) {
    return std::nullopt;
  }
}

bool in_order(const std::vector<Expr>& p, const std::vector<Expr>& r, double tolerance) {
  if (p.size() != r.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!scalars_equal(p[i], r[i], tolerance)) return false;
  }
  return true;
}

bool as_multisets(const std::vector<Expr>& p, const std::vector<Expr>& r, double tolerance) {
  if (p.size() != r.size()) return false;
  std::vector<bool> used(p.size(), false);
  for (const Expr& want : r) {
    bool found = false;
    for (size_t i = 0; i < p.size() && !found; ++i) {
      if (!used[i] && scalars_equal(p[i], want, tolerance)) used[i] = found = true;
    }
    if (!found) return false;
  }
  return true;
}

bool answers_equal(const Answer& p, const Answer& r, double tolerance) {
  switch (r.shape) {
    case Shape::kScalar:
      return p.shape == Shape::kScalar && in_order(p.items, r.items, tolerance);
    case Shape::kTuple:
      if (p.shape == Shape::kList) return in_order(p.items, r.items, tolerance);
      [[fallthrough]];
    case Shape::kInterval:
      return p.shape == r.shape && p.open == r.open && p.close == r.close &&
             in_order(p.items, r.items, tolerance);
    case Shape::kSet:
    case Shape::kList:
      return (p.shape == Shape::kSet || p.shape == Shape::kList) &&
             as_multisets(p.items, r.items, tolerance);
    case Shape::kUnion:
      return p.shape == Shape::kUnion && p.brackets == r.brackets &&
             in_order(p.items, r.items, tolerance);
  }
  return false;
}

std::string without_spaces(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ' ') out += c;
  }
  return out;
}

}  // namespace

std::string normalize_math_answer(std::string_view answer) {
  std::string s(trim(answer));
  if (std::optional<std::string> boxed = last_boxed(s)) s = *boxed;
  replace_all(s, "\xe2\x88\x92", "-");         // U+2212 minus
  replace_all(s, "\xc3\x97", "\\times ");      // U+00D7
  replace_all(s, "\xc3\xb7", "\\div ");        // U+00F7
  replace_all(s, "\xcf\x80", "\\pi ");         // U+03C0
  replace_all(s, "\xe2\x88\x9e", "\\infty ");  // U+221E
  replace_all(s, "\xc2\xb0", "");              // U+00B0 degree sign
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  replace_all(s, "\\(", "");
  replace_all(s, "\\)", "");
  replace_all(s, "\\[", "");
  replace_all(s, "\\]", "");
  for (std::string_view spacing :
       {"\\left", "\\right", "\\displaystyle", "\\quad", "\\qquad", "\\bigl", "\\bigr"}) {
    replace_command(s, spacing, "");
  }
  for (std::string_view spacing : {"\\!", "\\,", "\\;", "\\:", "\\ ", "~"})
    replace_all(s, spacing, " ");
  replace_command(s, "\\dfrac", "\\frac");
  replace_command(s, "\\tfrac", "\\frac");
  replace_all(s, "^{\\circ}", "");
  replace_all(s, "^\\circ", "");
  replace_command(s, "\\circ", "");
  replace_command(s, "\\degree", "");
  replace_all(s, "\\%", "");
  replace_all(s, "%", "");
  replace_all(s, "**", "^");
  unwrap_text_commands(s);
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  std::string collapsed;
  for (char c : s) {
    if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) continue;
    collapsed += c;
  }
  s = std::string(trim(collapsed));
  drop_trailing_units(s);
  s = std::string(trim(s));
  while (!s.empty() && s.back() == '.') s.pop_back();
  drop_thousands_separators(s);
  return std::string(trim(s));
}

bool math_answers_equal(std::string_view prediction, std::string_view reference,
                        const MathCompareOptions& options) {
  std::string p = normalize_math_answer(prediction);
  std::string r = normalize_math_answer(reference);
  if (p.empty() || r.empty() || p.size() > options.max_answer_chars) return false;
  std::optional<Answer> ref = parse_answer(r);
  if (!ref) return without_spaces(p) == without_spaces(r);
  std::optional<Answer> pred = parse_answer(p);
  if (!pred) return false;
  return answers_equal(*pred, *ref, options.tolerance);
}

}  // namespace r1kit
