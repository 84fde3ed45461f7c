// encode_prompts: the template's rendering, tokenized with the tokenizer's
// special tokens (a BOS, unless turned off), cut from the front to the prompt
// budget, with the rendered texts on request.
#include "learner/prompt_encoding.h"

#include <gtest/gtest.h>

#include "policy/char_tokenizer.h"

namespace r1kit {
namespace {

TEST(PromptEncoding, RendersTokenizesAndKeepsTheEndOfLongPrompts) {
  CharTokenizer tokenizer("abcdefghijklmnopqrstuvwxyz0123456789 +=?");
  auto plain = make_prompt_template("plain", "", "test");
  Task short_task, long_task;
  short_task.prompt = "1+2=?";
  long_task.prompt = "what is 12 + 30 = ?";
  std::vector<std::string> rendered;
  auto prompts = encode_prompts({short_task, long_task}, *plain, tokenizer,
                                /*max_prompt_length=*/8, &rendered);
  ASSERT_EQ(prompts.size(), 2u);
  ASSERT_EQ(rendered.size(), 2u);
  EXPECT_EQ(rendered[0], plain->render(short_task));
  EXPECT_EQ(rendered[1], plain->render(long_task));
  EXPECT_EQ(prompts[0], tokenizer.encode(rendered[0], /*add_special_tokens=*/true));
  EXPECT_EQ(prompts[0].front(), *tokenizer.bos_id());
  std::vector<int64_t> whole = tokenizer.encode(rendered[1], true);
  ASSERT_GT(whole.size(), 8u);
  EXPECT_EQ(prompts[1], std::vector<int64_t>(whole.end() - 8, whole.end()));
  EXPECT_EQ(encode_prompts({long_task}, *plain, tokenizer, 1000)[0], whole);
}

TEST(PromptEncoding, SpecialTokensCanBeTurnedOff) {
  CharTokenizer tokenizer("abcdefghijklmnopqrstuvwxyz0123456789 +=?");
  auto plain = make_prompt_template("plain", "", "test");
  Task task;
  task.prompt = "1+2=?";
  auto prompts = encode_prompts({task}, *plain, tokenizer, 100, nullptr,
                                /*add_special_tokens=*/false);
  EXPECT_EQ(prompts[0], tokenizer.encode(plain->render(task)));
  EXPECT_NE(prompts[0].front(), *tokenizer.bos_id());
}

}  // namespace
}  // namespace r1kit
