// `regex_match`: scores a completion by a regular expression, for format
// checks and shaping rewards without writing code. Modes: "search" (1 when the
// pattern occurs), "full" (1 when the whole completion matches) and "count"
// (non-overlapping occurrences per completion byte, in [0, 1] for
// one-character patterns).
//
// The pattern is PCRE2, compiled once per reward (JIT when the platform has
// it, else PCRE2's interpreter), and set up to read as ECMAScript does where
// the two differ: `$` matches only at the very end (not before a final
// newline), `.` matches neither \n nor \r, `[^]` matches any byte and `[]`
// none, and \uhhhh and \xhh are ECMAScript's escapes. A back-reference to a
// group that took no part in the match fails, as it did under std::regex
// (ECMAScript proper would match the empty string). Matching is on bytes, not
// UTF-8 characters, so `.` is one byte and \u escapes above \u00ff are
// refused. PCRE2 also accepts what ECMAScript lacks (lookbehind, atomic
// groups, possessive quantifiers, \A, \z, inline flags such as (?i)), and
// reads a few rare escapes its own way (\e, \a, \Q...\E, \p{..}).
//
// A match that would backtrack more than kMatchLimit steps gives up with
// RewardTimeout (counted as a timeout, like a call past its deadline), so a
// catastrophic pattern cannot hang a reward worker. The deadline is checked
// before every match; one match is bounded by the step limit. Thread-safe:
// the compiled pattern is shared, match data and the JIT stack are per thread.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <c10/util/Exception.h>
#include <pcre2.h>

#include <array>
#include <chrono>
#include <memory>

#include "common/config.h"
#include "common/error.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

// PCRE2's backtracking steps per match (its own default); about a second of
// interpreter time at most, far more than a sane pattern needs on a completion.
constexpr uint32_t kMatchLimit = 10'000'000;
// Nested backtracking points per match (interpreter only; the JIT is bounded by its stack).
constexpr uint32_t kDepthLimit = 100'000;
// Memory of one interpreted match, in KiB.
constexpr uint32_t kHeapLimitKib = 64 * 1024;

struct RegexMatchOptions {
  std::string pattern;          // ECMAScript-like PCRE2 syntax (see above); required
  std::string mode = "search";  // search | full | count

  void visit(ConfigVisitor& v) {
    v.field("pattern", pattern, {.required = true});
    v.field("mode", mode, {.choices = {"search", "full", "count"}});
  }
};

std::string pcre2_message(int code) {
  std::array<PCRE2_UCHAR, 256> message{};
  pcre2_get_error_message(code, message.data(), message.size());
  return reinterpret_cast<const char*>(message.data());
}

// What one thread needs to run matches: PCRE2 match data, a match context with
// the limits, and a JIT stack (the default 32 KiB is small for nested groups).
// Neither may be shared between threads running matches at once.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);  // the whole match only
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);

  ThreadMatchState() {
    TORCH_CHECK(data != nullptr && context != nullptr, "regex_match: out of memory");
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_set_depth_limit(context, kDepthLimit);
    pcre2_set_heap_limit(context, kHeapLimitKib);
    if (jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    if (jit_stack != nullptr) pcre2_jit_stack_free(jit_stack);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

enum class Mode { kSearch, kFull, kCount };

class RegexMatchReward : public RewardFn {
 public:
  RegexMatchReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<RegexMatchOptions>(options, source)),
        mode_(options_.mode == "full"    ? Mode::kFull
              : options_.mode == "count" ? Mode::kCount
                                         : Mode::kSearch),
        code_(compile(options_.pattern, mode_, source), &pcre2_code_free) {
    // A JIT failure (no JIT on this platform, an option it lacks) leaves the interpreter.
    (void)pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);
  }

  RewardResult score(const Sample& sample) const override {
    return score_until(sample, Deadline::max());
  }

  RewardResult score_until(const Sample& sample, Deadline deadline) const override {
    const std::string& text = sample.completion;
    ThreadMatchState& state = thread_match_state();
    if (mode_ != Mode::kCount) {
      return {.value = match(text, 0, 0, deadline, state) ? 1.0 : 0.0};
    }
    // Counts matches as std::sregex_iterator walks them: after an empty match,
    // a non-empty one anchored at the same place, else the search moves on a byte.
    int64_t count = 0;
    size_t offset = 0;
    uint32_t options = 0;
    while (offset <= text.size()) {
      if (!match(text, offset, options, deadline, state)) {
        if (options == 0 || offset == text.size()) break;
        ++offset;
        options = 0;
        continue;
      }
      ++count;
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
      bool empty = ovector[0] == ovector[1];
      if (empty && ovector[1] == text.size()) break;
      offset = ovector[1];
      options = empty ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    }
    return {.value =
                text.empty() ? 0.0 : static_cast<double>(count) / static_cast<double>(text.size())};
  }

 private:
  static pcre2_code* compile(const std::string& pattern, Mode mode, const std::string& source) {
    std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> context(
        pcre2_compile_context_create(nullptr), &pcre2_compile_context_free);
    TORCH_CHECK(context != nullptr, "regex_match: out of memory");
    // ECMAScript's line terminators for `.` (bytes: \n and \r).
    pcre2_set_newline(context.get(), PCRE2_NEWLINE_ANYCRLF);
    uint32_t options = PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS | PCRE2_ALT_BSUX;
    if (mode == Mode::kFull) options |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &error, &offset, context.get());
    if (code == nullptr) {
      throw_config_error(source + ": pattern: invalid regular expression \"" + pattern +
                         "\": " + pcre2_message(error) + " at offset " + std::to_string(offset));
    }
    return code;
  }

  // Whether the pattern matches `text` from `offset`; the match is in state.data.
  // Throws RewardTimeout past the deadline or the step limit.
  bool match(const std::string& text, size_t offset, uint32_t options, Deadline deadline,
             ThreadMatchState& state) const {
    if (deadline != Deadline::max() && std::chrono::steady_clock::now() >= deadline) {
      throw RewardTimeout("regex_match: past the deadline");
    }
    int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                         offset, options, state.data, state.context);
    if (rc >= 0) return true;  // 0: a match, with more groups than the match data holds
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc == PCRE2_ERROR_MATCHLIMIT) {
      throw RewardTimeout("regex_match: gave up after " + std::to_string(kMatchLimit) +
                          " backtracking steps (the pattern backtracks catastrophically on "
                          "this completion)");
    }
    throw_data_error("regex_match: the match failed: " + pcre2_message(rc));
  }

  RegexMatchOptions options_;
  Mode mode_;
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> code_;
};

}  // namespace

REGISTER_REWARD("regex_match", RegexMatchReward);

}  // namespace r1kit
