// math_answer throughput on one core: typical ~1 KB R1-style completions
// (reasoning, then an answer in \boxed{} inside <answer> tags), a mix of
// integers, fractions, decimals, roots and tuples, half of them correct.
// Target: >= 50k completions per second per core.
#include <chrono>
#include <cstdio>
#include <random>

#include "rewards/reward.h"

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::stoul(argv[1]) : 200000;
  const char* kAnswers[][2] = {
      {"72", "72"},        {"\\frac{3}{4}", "0.75"}, {"2\\sqrt{2}", "\\sqrt{8}"},
      {"(1, 2)", "(1,2)"}, {"1,000", "1000"},        {"\\frac{\\pi}{2}", "\\frac12\\pi"},
      {"x = 5", "5"},      {"12 \\text{ cm}", "12"}};
  std::mt19937_64 rng(0);
  const std::string filler =
      "Let me think step by step. First we compute the sum of the terms, then simplify the "
      "fraction and check "
      "the result against the constraints of the problem. ";
  std::vector<r1kit::Sample> samples;
  for (size_t i = 0; i < 1024; ++i) {
    auto& [answer, reference] = kAnswers[rng() % 8];
    std::string body;
    while (body.size() < 900) body += filler;
    bool correct = rng() % 2 == 0;
    std::string completion = "<think>" + body + "</think> <answer>The answer is \\boxed{" +
                             (correct ? std::string(answer) : std::string("17")) + "}</answer>";
    samples.push_back(r1kit::Sample{.completion = completion, .reference = reference});
  }
  auto reward = r1kit::make_reward("math_answer", nlohmann::json::object(), "bench");
  double total = 0.0;
  size_t bytes = 0;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    const r1kit::Sample& s = samples[i % samples.size()];
    total += reward->score(s).value.value_or(0.0);
    bytes += s.completion.size();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "math_answer: %zu completions (mean %.0f bytes) in %.3f s on one thread: %.0f completions/s "
      "(target 50000); mean reward %.3f\n",
      n, static_cast<double>(bytes) / n, seconds, n / seconds, total / n);
  return 0;
}
