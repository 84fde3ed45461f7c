#include "common/arithmetic_expression.h"

#include <cctype>
#include <string>

#include "common/error.h"

namespace r1kit {
namespace {

constexpr size_t kMaxLength = 256;
constexpr int kMaxDepth = 32;

class Evaluator {
 public:
  explicit Evaluator(std::string_view text) : s_(text) {}

  Evaluation run() {
    if (s_.size() > kMaxLength) fail("longer than " + std::to_string(kMaxLength) + " characters");
    Rational value = sum();
    skip();
    if (i_ != s_.size()) fail("unexpected \"" + std::string(1, s_[i_]) + "\"");
    return {value, std::move(literals_)};
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw_data_error("expression \"" + std::string(s_) + "\": " + what + " at position " +
                     std::to_string(i_));
  }
  static Rational check(std::optional<Rational> r) {
    if (!r) throw_data_error("expression: a value too large for exact arithmetic");
    return *r;
  }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  Rational sum() {
    if (++depth_ > kMaxDepth) fail("nested too deeply");
    Rational left = product();
    while (true) {
      if (eat('+')) {
        left = check(add(left, product()));
      } else if (eat('-')) {
        left = check(sub(left, product()));
      } else {
        break;
      }
    }
    --depth_;
    return left;
  }

  Rational product() {
    Rational left = unary();
    while (true) {
      if (eat('*') || eat('x') || eat('X')) {
        left = check(mul(left, unary()));
      } else if (eat('/')) {
        Rational right = unary();
        if (right.num() == 0) fail("division by zero");
        left = check(div(left, right));
      } else {
        break;
      }
    }
    return left;
  }

  Rational unary() {
    if (eat('-')) {
      if (++depth_ > kMaxDepth) fail("nested too deeply");
      Rational inner = unary();
      --depth_;
      return check(sub(Rational(0), inner));
    }
    if (eat('+')) return unary();
    return power();
  }

  Rational power() {
    Rational base = atom();
    if (eat('^')) {
      Rational exponent = unary();
      if (!exponent.is_integer() || exponent.num() > 64 || exponent.num() < -64) {
        fail("exponents must be integers between -64 and 64");
      }
      if (base.num() == 0 && exponent.num() < 0) fail("division by zero");
      return check(pow(base, exponent.num()));
    }
    return base;
  }

  Rational atom() {
    skip();
    if (eat('(')) {
      Rational inner = sum();
      if (!eat(')')) fail("missing \")\"");
      return inner;
    }
    size_t start = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    size_t int_end = i_;
    size_t decimals = 0;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_, ++decimals;
    }
    if (int_end == start && decimals == 0) {
      if (i_ < s_.size()) fail("unexpected \"" + std::string(1, s_[i_]) + "\"");
      fail("missing a number");
    }
    std::string digits(s_.substr(start, int_end - start));
    digits += std::string(s_.substr(int_end + (decimals > 0 ? 1 : 0), decimals));
    if (digits.size() > 18) fail("a number with more than 18 digits");
    int64_t scale = 1;
    for (size_t k = 0; k < decimals; ++k) scale *= 10;
    Rational value = check(Rational::make(std::stoll(digits), scale));
    literals_.push_back(value);
    return value;
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
  std::vector<Rational> literals_;
};

}  // namespace

Evaluation evaluate_expression(std::string_view text) { return Evaluator(text).run(); }

}  // namespace r1kit
