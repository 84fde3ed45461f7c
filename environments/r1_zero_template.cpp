// The DeepSeek-R1-Zero prompt (DeepSeek-AI 2025, table 1): the question inside
// a fixed instruction to think in <think> tags and answer in <answer> tags.
#include "environments/prompt_template.h"

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

}  // namespace

REGISTER_PROMPT_TEMPLATE("r1_zero", R1ZeroTemplate);

}  // namespace r1kit
