// Qwen's ChatML: <|im_start|>role\ncontent<|im_end|>\n per turn, then the
// assistant header. The recipe's system prompt opens the chat unless the task's
// own messages start with a system turn.
#include "environments/prompt_template.h"

namespace r1kit {
namespace {

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

}  // namespace

REGISTER_PROMPT_TEMPLATE("chatml", ChatMlTemplate);

}  // namespace r1kit
