#include "environments/prompt_template.h"

#include <functional>
#include <map>

#include "common/config.h"
#include "common/error.h"

namespace r1kit {

const char* const kR1ZeroTemplate =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves "
    "it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user "
    "with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. "
    "User: {prompt}. "
    "Assistant:";

namespace {

// The user's question: the plain prompt, or the chat's user turns joined.
std::string question_of(const Task& task) {
  if (!task.prompt.empty() || task.messages.empty()) return task.prompt;
  std::string text;
  for (const ChatMessage& m : task.messages) {
    if (m.role == "user") text += (text.empty() ? "" : "\n") + m.content;
  }
  return text;
}

class R1ZeroTemplate : public PromptTemplate {
 public:
  std::string render(const Task& task) const override {
    std::string text = kR1ZeroTemplate;
    std::string question = question_of(task);
    text.replace(text.find("{prompt}"), 8, question);
    return text;
  }
};

// Qwen's ChatML: <|im_start|>role\ncontent<|im_end|>\n ..., then the assistant header.
class ChatMlTemplate : public PromptTemplate {
 public:
  explicit ChatMlTemplate(std::string system_prompt) : system_prompt_(std::move(system_prompt)) {}

  std::string render(const Task& task) const override {
    std::string text;
    auto turn = [&text](const std::string& role, const std::string& content) {
      text += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
    };
    bool has_system = !task.messages.empty() && task.messages.front().role == "system";
    if (!system_prompt_.empty() && !has_system) turn("system", system_prompt_);
    if (task.messages.empty()) {
      turn("user", task.prompt);
    } else {
      for (const ChatMessage& m : task.messages) turn(m.role, m.content);
    }
    return text + "<|im_start|>assistant\n";
  }

 private:
  std::string system_prompt_;
};

// The question as it is; chat turns as "role: content" lines.
class PlainTemplate : public PromptTemplate {
 public:
  std::string render(const Task& task) const override {
    if (task.messages.empty()) return task.prompt;
    std::string text;
    for (const ChatMessage& m : task.messages) text += m.role + ": " + m.content + "\n";
    return text + "assistant:";
  }
};

using Factory = std::function<std::unique_ptr<PromptTemplate>(const std::string& system_prompt)>;

const std::map<std::string, Factory>& templates() {
  static const std::map<std::string, Factory> kTemplates = {
      {"r1_zero", [](const std::string&) { return std::make_unique<R1ZeroTemplate>(); }},
      {"chatml",
       [](const std::string& system) { return std::make_unique<ChatMlTemplate>(system); }},
      {"plain", [](const std::string&) { return std::make_unique<PlainTemplate>(); }},
  };
  return kTemplates;
}

}  // namespace

std::vector<std::string> registered_prompt_templates() {
  std::vector<std::string> names;
  for (const auto& [name, _] : templates()) names.push_back(name);
  return names;
}

std::unique_ptr<PromptTemplate> make_prompt_template(const std::string& name,
                                                     const std::string& system_prompt,
                                                     const std::string& source) {
  auto it = templates().find(name);
  if (it == templates().end()) {
    std::vector<std::string> known = registered_prompt_templates();
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    std::string guess = did_you_mean(name, known);
    throw_config_error(source + ": unknown prompt template \"" + name + "\"" +
                       (guess.empty() ? "" : " (did you mean \"" + guess + "\"?)") +
                       "; known templates: " + list);
  }
  return it->second(system_prompt);
}

}  // namespace r1kit
