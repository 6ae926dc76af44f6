// SPDX-License-Identifier: Apache-2.0
// test_strict_yaml.cpp: the strict reader's errors name file:line:column and the key
// path, unknown keys get a did-you-mean hint, and types and ranges are enforced.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/strict_yaml.h"

using namespace localist;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StrictYaml, ReadsTypedValuesWithDefaults) {
  StrictMap m = StrictMap::parse("a: 3\nb: 0.5\nc: true\nd: hello\ne: [x, y]\n", "t.yaml");
  EXPECT_EQ(m.get_int("a", 0, 0, 10), 3);
  EXPECT_DOUBLE_EQ(m.get_double("b", 0, 0, 1), 0.5);
  EXPECT_TRUE(m.get_bool("c", false));
  EXPECT_EQ(m.get_string("d", ""), "hello");
  EXPECT_EQ(m.get_string_list("e", {}), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(m.get_int("missing", 42, 0, 100), 42);
  EXPECT_NO_THROW(m.finish());
}

TEST(StrictYaml, UnknownKeyNamesLineColumnAndSuggests) {
  StrictMap root = StrictMap::parse("train:\n  steps: 5\n  stesp: 6\n", "c.yaml");
  StrictMap t = root.get_map("train");
  t.get_int("steps", 1, 1, 100);
  const std::string e = error_of([&] { t.finish(); });
  EXPECT_EQ(e, "c.yaml:3:3: train.stesp: unknown key (did you mean 'steps'?)");
}

TEST(StrictYaml, WrongTypeAndRange) {
  StrictMap m = StrictMap::parse("n: abc\nx: 1.5\nb: maybe\nk: [1]\n", "c.yaml");
  EXPECT_EQ(error_of([&] { m.get_int("n", 0, 0, 10); }), "c.yaml:1:4: n: expected an integer, got 'abc'");
  EXPECT_EQ(error_of([&] { m.get_int("x", 0, 0, 10); }), "c.yaml:2:4: x: expected an integer, got '1.5'");
  EXPECT_EQ(error_of([&] { m.get_double("x", 0, 0, 1); }), "c.yaml:2:4: x: value 1.5 is out of range [0, 1]");
  EXPECT_EQ(error_of([&] { m.get_bool("b", false); }), "c.yaml:3:4: b: expected true or false, got 'maybe'");
  EXPECT_EQ(error_of([&] { m.get_string("k", ""); }), "c.yaml:4:4: k: expected a string, got a list");
}

TEST(StrictYaml, DuplicateKeysAndSyntaxErrorsAreLocated) {
  EXPECT_EQ(error_of([] { StrictMap::parse("a: 1\na: 2\n", "d.yaml"); }),
            "d.yaml:2:1: a: duplicate key (each key may appear once)");
  const std::string e = error_of([] { StrictMap::parse("a: [1, 2\nb: 3\n", "s.yaml"); });
  EXPECT_EQ(e.rfind("s.yaml:", 0), 0u) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
  EXPECT_NE(error_of([] { StrictMap::parse("", "e.yaml"); }).find("the config is empty"), std::string::npos);
}

TEST(StrictYaml, SectionMustBeAMapping) {
  StrictMap root = StrictMap::parse("model: 5\n", "m.yaml");
  EXPECT_EQ(error_of([&] { root.get_map("model"); }), "m.yaml:1:8: model: expected a mapping of keys, got '5'");
}
