#include "common/registry.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/error.h"

namespace r1kit {
namespace {

using NumberFactory = std::function<int()>;

Registry<NumberFactory>& numbers() {
  static Registry<NumberFactory> registry("number");
  return registry;
}

R1KIT_REGISTER(numbers(), "seven", [] { return 7; });
R1KIT_REGISTER(numbers(), "eleven", [] { return 11; });

TEST(Registry, RegisterLineMakesANameKnown) {
  EXPECT_EQ(numbers().get("seven")(), 7);
  EXPECT_TRUE(numbers().contains("eleven"));
  EXPECT_FALSE(numbers().contains("twelve"));
}

TEST(Registry, NamesAreSorted) {
  EXPECT_EQ(numbers().names(), (std::vector<std::string>{"eleven", "seven"}));
}

TEST(Registry, DuplicateOrEmptyNameIsAConfigError) {
  Registry<NumberFactory> registry("number");
  registry.add("one", [] { return 1; });
  try {
    registry.add("one", [] { return 2; });
    FAIL() << "a duplicate was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("\"one\" is registered twice"), std::string::npos);
  }
  EXPECT_THROW(registry.add("", [] { return 0; }), Error);
  EXPECT_EQ(registry.get("one")(), 1);
}

TEST(Registry, UnknownNameListsTheKnownAndAGuess) {
  try {
    numbers().get("sevn", "recipe.json: numbers[0]");
    FAIL() << "an unknown name was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_STREQ(e.what(),
                 "recipe.json: numbers[0]: unknown number \"sevn\" (did you mean \"seven\"?); "
                 "known: eleven, seven");
  }
}

TEST(Registry, EmptyRegistrySaysNone) {
  Registry<NumberFactory> registry("widget");
  try {
    registry.get("x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unknown widget \"x\"; known: none");
  }
}

}  // namespace
}  // namespace r1kit
