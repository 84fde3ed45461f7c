// The prompt template registry: a REGISTER_PROMPT_TEMPLATE line in a test file
// makes a template make_prompt_template builds by name (with the recipe's system
// prompt when it takes one); an unknown name is the registry's message.
#include "environments/prompt_template.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace r1kit {
namespace {

// The system prompt, then the question in capitals.
class TestShoutTemplate : public PromptTemplate {
 public:
  explicit TestShoutTemplate(std::string system_prompt)
      : system_prompt_(std::move(system_prompt)) {}
  std::string render(const Task& task) const override {
    std::string text = task.prompt;
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return system_prompt_ + text + "!";
  }

 private:
  std::string system_prompt_;
};
REGISTER_PROMPT_TEMPLATE("test_shout", TestShoutTemplate);

// Takes no system prompt.
class TestEchoTemplate : public PromptTemplate {
 public:
  std::string render(const Task& task) const override { return task.prompt; }
};
REGISTER_PROMPT_TEMPLATE("test_echo", TestEchoTemplate);

TEST(PromptTemplateRegistry, RegistrationLineMakesATemplateUsable) {
  EXPECT_EQ(registered_prompt_templates(),
            (std::vector<std::string>{"chatml", "plain", "r1_zero", "test_echo", "test_shout"}));
  Task task{.prompt = "hi"};
  EXPECT_EQ(make_prompt_template("test_shout", "> ", "test")->render(task), "> HI!");
  EXPECT_EQ(make_prompt_template("test_echo", "ignored", "test")->render(task), "hi");
}

TEST(PromptTemplateRegistry, UnknownNameIsTheRegistryMessage) {
  try {
    make_prompt_template("chatlm", "", "recipe.json: environment.prompt_template");
    FAIL() << "an unknown template was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_STREQ(e.what(),
                 "recipe.json: environment.prompt_template: unknown prompt template \"chatlm\" "
                 "(did you mean \"chatml\"?); known: chatml, plain, r1_zero, test_echo, "
                 "test_shout");
  }
}

TEST(PromptTemplateRegistry, DuplicateNameIsRefused) {
  EXPECT_THROW(prompt_template_registry().add(
                   "chatml", [](const std::string&) { return std::unique_ptr<PromptTemplate>(); }),
               Error);
}

}  // namespace
}  // namespace r1kit
