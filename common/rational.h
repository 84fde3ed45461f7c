// An exact rational number p/q on 64-bit integers, always reduced, q > 0.
// Arithmetic that would overflow returns std::nullopt instead of a wrong value,
// so callers (answer checking, expression evaluation) can fall back or refuse.
// A value type: copy freely, no shared state.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <string>

namespace r1kit {

class Rational {
 public:
  Rational() = default;
  Rational(int64_t value) : num_(value), den_(1) {}  // NOLINT: implicit from integers

  // nullopt when den == 0 or the reduced value does not fit.
  static std::optional<Rational> make(__int128 num, __int128 den) {
    if (den == 0) return std::nullopt;
    if (den < 0) num = -num, den = -den;
    __int128 g = gcd128(num < 0 ? -num : num, den);
    if (g > 1) num /= g, den /= g;
    if (num > kMax || num < -kMax || den > kMax) return std::nullopt;
    Rational r;
    r.num_ = static_cast<int64_t>(num);
    r.den_ = static_cast<int64_t>(den);
    return r;
  }

  int64_t num() const { return num_; }
  int64_t den() const { return den_; }
  bool is_integer() const { return den_ == 1; }
  double to_double() const { return static_cast<double>(num_) / static_cast<double>(den_); }

  // "7", "-3/4".
  std::string to_string() const {
    return den_ == 1 ? std::to_string(num_) : std::to_string(num_) + "/" + std::to_string(den_);
  }

  friend bool operator==(const Rational& a, const Rational& b) = default;
  friend bool operator<(const Rational& a, const Rational& b) {
    return static_cast<__int128>(a.num_) * b.den_ < static_cast<__int128>(b.num_) * a.den_;
  }

  friend std::optional<Rational> add(const Rational& a, const Rational& b) {
    return make(static_cast<__int128>(a.num_) * b.den_ + static_cast<__int128>(b.num_) * a.den_,
                static_cast<__int128>(a.den_) * b.den_);
  }
  friend std::optional<Rational> sub(const Rational& a, const Rational& b) {
    return make(static_cast<__int128>(a.num_) * b.den_ - static_cast<__int128>(b.num_) * a.den_,
                static_cast<__int128>(a.den_) * b.den_);
  }
  friend std::optional<Rational> mul(const Rational& a, const Rational& b) {
    return make(static_cast<__int128>(a.num_) * b.num_, static_cast<__int128>(a.den_) * b.den_);
  }
  // nullopt on division by zero too.
  friend std::optional<Rational> div(const Rational& a, const Rational& b) {
    return make(static_cast<__int128>(a.num_) * b.den_, static_cast<__int128>(a.den_) * b.num_);
  }
  // Integer exponents only; nullopt on overflow or 0^negative.
  friend std::optional<Rational> pow(const Rational& base, int64_t exponent) {
    if (exponent < 0) {
      if (base.num_ == 0) return std::nullopt;
      std::optional<Rational> positive = pow(base, -exponent);
      if (!positive) return std::nullopt;
      return div(Rational(1), *positive);
    }
    if (exponent == 0) return Rational(1);
    if (base.den_ == 1 && (base.num_ == 0 || base.num_ == 1)) return base;
    if (base.den_ == 1 && base.num_ == -1) return Rational(exponent % 2 == 0 ? 1 : -1);
    // Any other base overflows within 63 steps, so the loop is short.
    Rational result(1);
    for (int64_t i = 0; i < exponent; ++i) {
      std::optional<Rational> next = mul(result, base);
      if (!next) return std::nullopt;
      result = *next;
    }
    return result;
  }

 private:
  static constexpr __int128 kMax = INT64_MAX;
  static __int128 gcd128(__int128 a, __int128 b) {
    while (b != 0) {
      __int128 t = a % b;
      a = b;
      b = t;
    }
    return a == 0 ? 1 : a;
  }

  int64_t num_ = 0;
  int64_t den_ = 1;
};

}  // namespace r1kit
