// `code_exec`: runs the program the model wrote against the task's tests, the
// way R1-style code RL scores completions (DeepSeek-AI 2025; DeepCoder,
// Open-R1): the last ```python (or ```cpp / ```c) block of the completion,
// run in rewards/sandbox.h once per test; the score is the fraction of tests
// passed, or 1/0 when all must pass. Tests come from the task's metadata
// (`tests` by default) or its reference:
//   stdin/stdout  [{"input": "1 2\n", "output": "3\n"}, ...]  or
//                 {"inputs": [...], "outputs": [...]}          (APPS, CodeContests)
//   assert code   "assert add(1, 2) == 3\n..." or a list of such strings, each one
//                 test (MBPP's test_list); HumanEval's "def check(candidate)"
//                 is called with metadata "entry_point". Python only.
// Stateless after construction; thread-safe.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>

#include "common/config.h"
#include "common/error.h"
#include "rewards/reward.h"
#include "rewards/sandbox.h"

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

struct CodeExecOptions {
  std::string language = "python";  // python, cpp or c; a task's metadata "language" overrides
  bool partial_credit = true;       // the fraction of tests passed; false = 1 only if all pass
  std::string tests_key = "tests";  // the metadata key holding the tests; absent = the reference
  // How stdout is compared with a test's output: lines (trailing spaces and
  // trailing blank lines ignored), tokens (whitespace-separated) or exact.
  std::string compare = "lines";
  bool after_think = true;             // with a "</think>", only code after the last one counts
  bool plain_fence = false;            // an unlabelled ``` block counts as the language's code
  double timeout_seconds = 5.0;        // wall clock of one test; also its CPU seconds (rounded up)
  int64_t memory_mb = 512;             // address space of each process
  int64_t max_processes = 16;          // processes alive at once in one test's sandbox
  int64_t max_output_bytes = 1 << 20;  // stdout (and stderr) of one test; more fails the test
  int64_t max_file_bytes = 16 << 20;   // the sandbox's writable /tmp and any one file in it
  int64_t max_tests = 0;               // run at most this many of a task's tests; 0 = all
  std::string python = "/usr/bin/python3";  // the interpreter, as an absolute path
  std::string cpp_compiler = "/usr/bin/g++";
  std::string c_compiler = "/usr/bin/gcc";
  std::vector<std::string> cpp_flags = {"-O2", "-std=c++17"};
  std::vector<std::string> c_flags = {"-O2", "-std=c11"};
  double compile_timeout_seconds = 10.0;     // wall clock (and CPU seconds) of a compilation
  int64_t compile_memory_mb = 2048;          // address space of the compiler's processes
  std::vector<std::string> read_only_paths;  // extra host folders the programs may read

  void visit(ConfigVisitor& v) {
    v.field("language", language, {.choices = {"python", "cpp", "c"}});
    v.field("partial_credit", partial_credit);
    v.field("tests_key", tests_key);
    v.field("compare", compare, {.choices = {"lines", "tokens", "exact"}});
    v.field("after_think", after_think);
    v.field("plain_fence", plain_fence);
    v.field("timeout_seconds", timeout_seconds, {.min = 0.0, .min_exclusive = true});
    v.field("memory_mb", memory_mb, {.min = 16.0});
    v.field("max_processes", max_processes, {.min = 1.0, .max = 4096.0});
    v.field("max_output_bytes", max_output_bytes, {.min = 1.0});
    v.field("max_file_bytes", max_file_bytes, {.min = 4096.0});
    v.field("max_tests", max_tests, {.min = 0.0});
    v.field("python", python);
    v.field("cpp_compiler", cpp_compiler);
    v.field("c_compiler", c_compiler);
    v.field("cpp_flags", cpp_flags);
    v.field("c_flags", c_flags);
    v.field("compile_timeout_seconds", compile_timeout_seconds,
            {.min = 0.0, .min_exclusive = true});
    v.field("compile_memory_mb", compile_memory_mb, {.min = 16.0});
    v.field("read_only_paths", read_only_paths);
    if (tests_key.empty()) v.fail("tests_key", "must not be empty");
    const std::string& tool = tool_for(language);
    if (!std::filesystem::path(tool).is_absolute() || access(tool.c_str(), X_OK) != 0)
      v.fail(tool_key(language), "\"" + tool + "\" is not an executable file (an absolute path)");
    for (const std::string& path : read_only_paths) {
      std::filesystem::path p(path);
      if (!p.is_absolute() || p.lexically_normal() != p || path == "/")
        v.fail("read_only_paths", "\"" + path + "\" must be a normalised absolute path, not /");
      if (path == "/tmp" || path.starts_with("/tmp/"))
        v.fail("read_only_paths", "\"" + path + "\" is under /tmp, the sandbox's own folder");
      if (!std::filesystem::exists(p)) v.fail("read_only_paths", "\"" + path + "\" does not exist");
    }
  }

  const std::string& tool_for(const std::string& lang) const {
    return lang == "cpp" ? cpp_compiler : lang == "c" ? c_compiler : python;
  }
  static const char* tool_key(const std::string& lang) {
    return lang == "cpp" ? "cpp_compiler" : lang == "c" ? "c_compiler" : "python";
  }
};

// One test: stdin and the expected stdout, or Python code run after the program.
struct TestCase {
  bool is_assert = false;
  std::string input;
  std::string expected_output;
  std::string assert_code;
};

std::string_view trim(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string text_field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) throw_data_error(std::string("a test has no \"") + key + "\"");
  if (!it->is_string()) throw_data_error(std::string("a test's \"") + key + "\" is not a string");
  return it->get<std::string>();
}

std::vector<TestCase> parse_tests(const nlohmann::json& tests) {
  std::vector<TestCase> cases;
  if (tests.is_string()) {
    std::string_view text = trim(tests.get_ref<const std::string&>());
    if (text.starts_with('{') || text.starts_with('[')) {
      nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded()) return parse_tests(parsed);
    }
    if (!text.empty()) cases.push_back({.is_assert = true, .assert_code = std::string(text)});
  } else if (tests.is_array()) {
    for (const nlohmann::json& test : tests) {
      if (test.is_string()) {
        cases.push_back({.is_assert = true, .assert_code = test.get<std::string>()});
      } else if (test.is_object()) {
        cases.push_back(
            {.input = text_field(test, "input"), .expected_output = text_field(test, "output")});
      } else {
        throw_data_error("a test is neither assert code nor an {\"input\", \"output\"} object");
      }
    }
  } else if (tests.is_object() && tests.contains("inputs")) {
    const nlohmann::json& inputs = tests["inputs"];
    const nlohmann::json* outputs = tests.contains("outputs") ? &tests["outputs"] : nullptr;
    if (!inputs.is_array() || !outputs || !outputs->is_array() || inputs.size() != outputs->size())
      throw_data_error("\"inputs\" and \"outputs\" must be lists of the same length");
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].is_string() || !(*outputs)[i].is_string())
        throw_data_error("\"inputs\" and \"outputs\" must hold strings");
      cases.push_back({.input = inputs[i].get<std::string>(),
                       .expected_output = (*outputs)[i].get<std::string>()});
    }
  } else if (tests.is_object()) {
    cases.push_back(
        {.input = text_field(tests, "input"), .expected_output = text_field(tests, "output")});
  } else {
    throw_data_error("tests must be a list, an {\"inputs\", \"outputs\"} object or assert code");
  }
  return cases;
}

// The body of the last fenced block labelled with one of `labels` (or with no
// label when `plain` is set); nullopt when there is none.
std::optional<std::string> extract_code(std::string_view text,
                                        const std::vector<std::string_view>& labels, bool plain) {
  std::optional<std::string> found;
  size_t pos = 0;
  while ((pos = text.find("```", pos)) != std::string_view::npos) {
    size_t line_end = text.find('\n', pos);
    if (line_end == std::string_view::npos) break;
    std::string label(trim(text.substr(pos + 3, line_end - pos - 3)));
    label = label.substr(0, label.find_first_of(" \t{"));
    std::transform(label.begin(), label.end(), label.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    size_t close = text.find("```", line_end + 1);
    if (close == std::string_view::npos) break;  // an unclosed block (a truncated completion)
    bool wanted =
        label.empty() ? plain : std::find(labels.begin(), labels.end(), label) != labels.end();
    if (wanted) found = std::string(text.substr(line_end + 1, close - line_end - 1));
    pos = close + 3;
  }
  return found;
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? end : end - start);
    size_t last = line.find_last_not_of(" \t\r");
    lines.emplace_back(last == std::string_view::npos ? std::string_view{}
                                                      : line.substr(0, last + 1));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::vector<std::string> tokens_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> tokens;
  for (std::string token; in >> token;) tokens.push_back(std::move(token));
  return tokens;
}

bool outputs_match(const std::string& got, const std::string& expected, const std::string& mode) {
  if (mode == "exact") return got == expected;
  if (mode == "tokens") return tokens_of(got) == tokens_of(expected);
  return lines_of(got) == lines_of(expected);
}

std::string tail(const std::string& text, size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

class CodeExecReward : public RewardFn {
 public:
  CodeExecReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<CodeExecOptions>(options, source)),
        run_sandbox_(
            make_limits(options_.timeout_seconds, options_.memory_mb, options_.max_processes)),
        compile_sandbox_(make_limits(options_.compile_timeout_seconds, options_.compile_memory_mb,
                                     std::max<int64_t>(options_.max_processes, 16))) {
    std::string why = Sandbox::unavailable_reason();
    if (!why.empty()) {
      throw Error(source + ": code_exec: the sandbox cannot run on this machine, and code_exec " +
                  "never runs code without it: " + why);
    }
    // The configured interpreter or compiler must be visible inside.
    SandboxRun probe{.argv = {options_.tool_for(options_.language), "--version"},
                     .deadline = Clock::now() + std::chrono::seconds(30)};
    SandboxResult result;
    try {
      result = run_sandbox_.run(probe);
    } catch (const Error& e) {
      throw_config_error(source + ": code_exec: " + CodeExecOptions::tool_key(options_.language) +
                         ": " + e.what());
    }
    if (!result.succeeded()) {
      throw_config_error(source + ": code_exec: " + CodeExecOptions::tool_key(options_.language) +
                         ": \"" + options_.tool_for(options_.language) +
                         " --version\" fails in the sandbox (" + result.describe() +
                         "): " + tail(result.stderr_data, 300));
    }
  }

  RewardResult score(const Sample& sample) const override {
    return score_until(sample, Clock::time_point::max());
  }

  RewardResult score_until(const Sample& sample, Deadline deadline) const override {
    std::vector<TestCase> tests = tests_of(sample);
    if (tests.empty()) return {};  // not applicable: the task has no tests
    if (options_.max_tests > 0 && static_cast<int64_t>(tests.size()) > options_.max_tests)
      tests.resize(static_cast<size_t>(options_.max_tests));
    std::string language = options_.language;
    if (auto it = sample.metadata.find("language");
        it != sample.metadata.end() && it->is_string()) {
      language = it->get<std::string>();
      if (language == "python3" || language == "py") language = "python";
      if (language == "c++") language = "cpp";
      if (language != "python" && language != "cpp" && language != "c")
        throw_data_error("code_exec: metadata \"language\": \"" + language +
                         "\" is not python, cpp or c");
    }
    const bool has_asserts =
        std::any_of(tests.begin(), tests.end(), [](const TestCase& t) { return t.is_assert; });
    if (has_asserts && language != "python")
      throw_data_error("code_exec: assert-style tests need python, the task says " + language);

    RewardResult result;
    result.info["language"] = language;
    result.info["tests"] = tests.size();
    std::optional<std::string> code =
        extract_code(searched_text(sample.completion), labels_of(language), options_.plain_fence);
    result.components["has_code"] = code ? 1.0 : 0.0;
    if (!code) {
      result.value = 0.0;
      result.components["pass_rate"] = 0.0;
      result.info["failure"] = "no ```" + language + " block";
      return result;
    }

    std::vector<SandboxFile> program_files;
    std::vector<std::string> argv;
    if (language == "python") {
      argv = {options_.python, "-I", "/tmp/main.py"};
    } else {
      std::string compiler_output;
      if (!compile(*code, language, deadline, &program_files, &compiler_output)) {
        result.value = 0.0;
        result.components["pass_rate"] = 0.0;
        result.info["failure"] = "compilation failed: " + tail(compiler_output, 500);
        return result;
      }
      argv = {"/tmp/program"};
    }

    size_t passed = 0;
    for (size_t i = 0; i < tests.size(); ++i) {
      const TestCase& test = tests[i];
      if (Clock::now() >= deadline)
        throw RewardTimeout("code_exec: the reward's deadline passed before test " +
                            std::to_string(i));
      SandboxRun run{.argv = argv, .files = program_files, .stdin_data = test.input};
      if (language == "python") {
        std::string source = *code;
        if (test.is_assert) source += "\n\n" + with_check_call(test.assert_code, sample.metadata);
        run.files = {{.name = "main.py", .content = std::move(source)}};
      }
      run.deadline = test_deadline(options_.timeout_seconds, deadline);
      SandboxResult outcome = run_sandbox_.run(run);
      if (outcome.outcome == SandboxOutcome::kTimedOut && run.deadline == deadline)
        throw RewardTimeout("code_exec: the reward's deadline passed during test " +
                            std::to_string(i));
      std::string failure;
      if (!outcome.succeeded()) {
        failure = outcome.describe();
      } else if (!test.is_assert &&
                 !outputs_match(outcome.stdout_data, test.expected_output, options_.compare)) {
        failure = "wrong output";
      }
      if (failure.empty()) {
        ++passed;
        continue;
      }
      if (!result.info.contains("failure")) {
        result.info["failure"] = {
            {"test", i}, {"why", failure}, {"stderr", tail(outcome.stderr_data, 300)}};
      }
      if (!options_.partial_credit) break;
    }
    double pass_rate = static_cast<double>(passed) / static_cast<double>(tests.size());
    result.info["passed"] = passed;
    result.components["pass_rate"] = pass_rate;
    result.value = options_.partial_credit ? pass_rate : (passed == tests.size() ? 1.0 : 0.0);
    return result;
  }

 private:
  SandboxLimits make_limits(double seconds, int64_t memory_mb, int64_t processes) const {
    return {.cpu_seconds = seconds,
            .memory_mb = memory_mb,
            .max_processes = processes,
            .max_file_bytes = options_.max_file_bytes,
            .max_output_bytes = options_.max_output_bytes,
            .read_only_paths = options_.read_only_paths};
  }

  static Deadline test_deadline(double seconds, Deadline deadline) {
    Deadline own = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
    return std::min(own, deadline);
  }

  std::string_view searched_text(std::string_view completion) const {
    if (!options_.after_think) return completion;
    size_t close = completion.rfind("</think>");
    return close == std::string_view::npos ? completion : completion.substr(close + 8);
  }

  static std::vector<std::string_view> labels_of(const std::string& language) {
    if (language == "cpp") return {"cpp", "c++", "cxx", "cc"};
    if (language == "c") return {"c"};
    return {"python", "py", "python3"};
  }

  // HumanEval's tests define check(candidate); call it on the task's entry point.
  static std::string with_check_call(const std::string& assert_code,
                                     const nlohmann::json& metadata) {
    auto entry = metadata.find("entry_point");
    if (entry == metadata.end() || !entry->is_string() ||
        assert_code.find("def check(") == std::string::npos)
      return assert_code;
    return assert_code + "\n\ncheck(" + entry->get<std::string>() + ")\n";
  }

  std::vector<TestCase> tests_of(const Sample& sample) const {
    try {
      auto it = sample.metadata.find(options_.tests_key);
      if (it != sample.metadata.end() && !it->is_null()) return parse_tests(*it);
      if (!trim(sample.reference).empty()) return parse_tests(nlohmann::json(sample.reference));
      return {};
    } catch (const Error& e) {
      throw Error("code_exec: the task's tests: " + std::string(e.what()), ErrorKind::kData);
    }
  }

  // Compiles `code` in its own sandbox; on success the binary is the one file to run.
  bool compile(const std::string& code, const std::string& language, Deadline deadline,
               std::vector<SandboxFile>* files, std::string* compiler_output) const {
    const bool cpp = language == "cpp";
    const std::string source_name = cpp ? "main.cpp" : "main.c";
    SandboxRun run{.argv = {cpp ? options_.cpp_compiler : options_.c_compiler},
                   .files = {{.name = source_name, .content = code}},
                   .collect_file = "program"};
    for (const std::string& flag : cpp ? options_.cpp_flags : options_.c_flags)
      run.argv.push_back(flag);
    run.argv.insert(run.argv.end(), {"-o", "/tmp/program", "/tmp/" + source_name});
    if (!cpp) run.argv.push_back("-lm");
    run.deadline = test_deadline(options_.compile_timeout_seconds, deadline);
    SandboxResult outcome = compile_sandbox_.run(run);
    if (outcome.outcome == SandboxOutcome::kTimedOut && run.deadline == deadline)
      throw RewardTimeout("code_exec: the reward's deadline passed while compiling");
    *compiler_output = outcome.stderr_data;
    if (!outcome.succeeded() || outcome.collected.empty()) {
      if (compiler_output->empty()) *compiler_output = outcome.describe();
      return false;
    }
    files->push_back(
        {.name = "program", .content = std::move(outcome.collected), .executable = true});
    return true;
  }

  CodeExecOptions options_;
  Sandbox run_sandbox_;
  Sandbox compile_sandbox_;
};

}  // namespace

REGISTER_REWARD("code_exec", CodeExecReward);

}  // namespace r1kit
