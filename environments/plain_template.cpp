// The question as it is; chat turns as "role: content" lines, then "assistant:".
// For base models without a chat format, and for tests.
#include "environments/prompt_template.h"

namespace r1kit {
namespace {

class PlainTemplate : public PromptTemplate {
 public:
  std::string render(const Task& task) const override {
    if (task.messages.empty()) return task.prompt;
    std::string text;
    for (const ChatMessage& m : task.messages) text += m.role + ": " + m.content + "\n";
    return text + "assistant:";
  }
};

}  // namespace

REGISTER_PROMPT_TEMPLATE("plain", PlainTemplate);

}  // namespace r1kit
