// regex_match: its three modes, the same scores as std::regex's ECMAScript
// reading on ordinary patterns, catastrophic backtracking reported as a timeout
// within the deadline, bad patterns named as config errors, many threads at once.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "common/error.h"
#include "common/thread_pool.h"
#include "rewards/reward.h"
#include "rewards/reward_set.h"

namespace r1kit {
namespace {

std::unique_ptr<RewardFn> regex_reward(const std::string& pattern, const std::string& mode) {
  return make_reward("regex_match", {{"pattern", pattern}, {"mode", mode}}, "test");
}

double score(const std::string& pattern, const std::string& mode, const std::string& text) {
  return regex_reward(pattern, mode)->score(Sample{.completion = text}).value.value();
}

// The scores std::regex gives, the meaning the options have always had.
double std_regex_score(const std::string& pattern, const std::string& mode,
                       const std::string& text) {
  std::regex regex(pattern, std::regex::ECMAScript);
  if (mode == "full") return std::regex_match(text, regex) ? 1.0 : 0.0;
  if (mode == "search") return std::regex_search(text, regex) ? 1.0 : 0.0;
  auto begin = std::sregex_iterator(text.begin(), text.end(), regex);
  double count = static_cast<double>(std::distance(begin, std::sregex_iterator()));
  return text.empty() ? 0.0 : count / static_cast<double>(text.size());
}

TEST(RegexMatch, SearchFullAndCount) {
  EXPECT_EQ(score("<answer>", "search", "x <answer>4</answer>"), 1.0);
  EXPECT_EQ(score("<answer>", "search", "no tags"), 0.0);
  EXPECT_EQ(score("<think>.*</think>", "full", "<think>a</think>"), 1.0);
  EXPECT_EQ(score("<think>.*</think>", "full", "<think>a</think> trailing"), 0.0);
  EXPECT_EQ(score("7", "count", "a7b77"), 3.0 / 5.0);
  EXPECT_EQ(score("7", "count", ""), 0.0);
  EXPECT_EQ(score("a*", "count", "baaac"), 4.0 / 5.0);  // empty, "aaa", empty, empty at the end
}

TEST(RegexMatch, ScoresAsStdRegexDoesOnOrdinaryPatterns) {
  const std::vector<std::string> patterns = {"7",
                                             "<think>.*</think>",
                                             R"(^<think>[\s\S]*</think>\s*<answer>.*</answer>$)",
                                             "a*",
                                             R"(\d+)",
                                             "(ab|a)(c|bcd)",
                                             "x?",
                                             R"(\bfoo\b)",
                                             "[^a-z]",
                                             "^$",
                                             "$",
                                             "",
                                             ".",
                                             "a|",
                                             "(?=a)",
                                             R"(\s+)",
                                             "x$",
                                             "a.b",
                                             "^cd",
                                             R"((a)|b\1)",
                                             "(a+)+b",
                                             R"(\u0041)",
                                             R"(\x41\.)",
                                             "[abc]{2,3}?",
                                             R"((\w)\1)",
                                             "(?!a).",
                                             "\\n",
                                             R"(\bx)",
                                             "(?:ab)*c",
                                             R"(\S+@\S+)",
                                             R"((a)|\1x)"};
  const std::vector<std::string> texts = {"",
                                          "7",
                                          "a7b77",
                                          "<think>hi</think> <answer>4</answer>",
                                          "<think>\nhi\r\n</think>\n<answer>4</answer>\n",
                                          "line1\nline2\r\n",
                                          "foo food foo",
                                          "baaac",
                                          "x\n",
                                          "a\rb a\nb axb",
                                          "ab\ncd",
                                          "abcd abc ac",
                                          "A. AA. ba",
                                          "aabbccdd",
                                          "aaaab",
                                          "bx xx",
                                          "me@x.org y"};
  for (const std::string& pattern : patterns) {
    for (const std::string mode : {"search", "full", "count"}) {
      auto reward = regex_reward(pattern, mode);
      for (const std::string& text : texts) {
        EXPECT_EQ(reward->score(Sample{.completion = text}).value.value(),
                  std_regex_score(pattern, mode, text))
            << "pattern \"" << pattern << "\", mode " << mode << ", text \"" << text << "\"";
      }
    }
  }
}

TEST(RegexMatch, CatastrophicBacktrackingIsATimeoutNotAHang) {
  const std::string text = std::string(40, 'a') + "b";
  for (const std::string mode : {"search", "full", "count"}) {
    auto reward = regex_reward("^(a+)+$", mode);
    const auto timeout = std::chrono::seconds(5);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(reward->score_until(Sample{.completion = text}, start + timeout), RewardTimeout)
        << mode;
    EXPECT_LT(std::chrono::steady_clock::now() - start, timeout) << mode;
    // Without a deadline the step limit still stops it.
    EXPECT_THROW(reward->score(Sample{.completion = text}), RewardTimeout) << mode;
  }
}

TEST(RegexMatch, PassedDeadlineIsATimeout) {
  auto reward = regex_reward("7", "count");
  Deadline passed = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  EXPECT_THROW(reward->score_until(Sample{.completion = "777"}, passed), RewardTimeout);
  Deadline later = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  EXPECT_EQ(reward->score_until(Sample{.completion = "777"}, later).value, 1.0);
}

TEST(RegexMatch, RewardSetCountsTheRunawayPatternAsATimeout) {
  RewardSpec spec;
  spec.name = "regex_match";
  spec.options = {{"pattern", "^(a+)+$"}};
  spec.fallback = -1.0;
  spec.timeout_seconds = 5.0;
  RewardSet rewards({spec}, "test");
  ThreadPool pool(2);
  BatchScores scores = rewards.score(
      {Sample{.completion = std::string(40, 'a') + "b"}, Sample{.completion = "aa"}}, pool);
  EXPECT_EQ(scores.timeouts[0], 1);
  EXPECT_EQ(scores.errors[0], 0);
  EXPECT_EQ(scores.outcomes[0][0], RewardOutcome::kTimeout);
  EXPECT_EQ(scores.values[0][0], -1.0);
  EXPECT_EQ(scores.values[1][0], 1.0);
}

TEST(RegexMatch, BadPatternIsAConfigErrorNamingTheOption) {
  try {
    regex_reward("(unclosed", "search");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(what.find("test: pattern: invalid regular expression \"(unclosed\""),
              std::string::npos)
        << what;
  }
  EXPECT_THROW(make_reward("regex_match", nlohmann::json::object(), "test"), Error);  // required
  EXPECT_THROW(regex_reward("7", "fuzzy"), Error);
}

TEST(RegexMatch, ManyThreadsShareOneReward) {
  auto reward = regex_reward(R"(\d)", "count");
  std::vector<std::thread> threads;
  std::vector<double> scores(8);
  for (size_t t = 0; t < scores.size(); ++t) {
    threads.emplace_back([&, t] {
      std::string text = std::string(t + 1, '7') + std::string(7 - t, 'x');  // 8 bytes
      for (int k = 0; k < 200; ++k) scores[t] = reward->score({.completion = text}).value.value();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t t = 0; t < scores.size(); ++t) {
    EXPECT_EQ(scores[t], static_cast<double>(t + 1) / 8.0) << t;
  }
}

}  // namespace
}  // namespace r1kit
