// SPDX-License-Identifier: Apache-2.0
// test_dial.cpp: dial schedules against hand-computed values, uniform draws as a
// pure function of (seed, step), and the --dial argument forms of eval/generate.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "launch/dial_arg.h"
#include "trainer/dial_schedule.h"

using namespace localist;

TEST(DialSchedule, ConstantLinearCosine) {
  DialSchedule c;
  c.value = {0.3};
  EXPECT_EQ(c.at(99, 3, 0), (std::vector<double>{0.3, 0.3, 0.3}));
  c.value = {0.1, 0.9};
  EXPECT_EQ(c.at(0, 2, 0), (std::vector<double>{0.1, 0.9}));
  EXPECT_THROW(c.at(0, 3, 0), ConfigError);

  DialSchedule l;
  l.kind = "linear", l.from = 0.2, l.to = 0.6, l.start = 10, l.end = 30;
  EXPECT_DOUBLE_EQ(l.at(0, 1, 0)[0], 0.2);
  EXPECT_DOUBLE_EQ(l.at(20, 1, 0)[0], 0.4);
  EXPECT_DOUBLE_EQ(l.at(1000, 1, 0)[0], 0.6);
  DialSchedule k = l;
  k.kind = "cosine";
  EXPECT_DOUBLE_EQ(k.at(20, 1, 0)[0], 0.4);  // half way: cosine and linear meet
  EXPECT_NEAR(k.at(15, 1, 0)[0], 0.2 + 0.4 * 0.5 * (1 - std::cos(M_PI * 0.25)), 1e-15);
}

TEST(DialSchedule, PointsStagesUniform) {
  DialSchedule p;
  p.kind = "points";
  p.points = {{0, 0.0}, {10, 1.0}, {20, 0.5}};
  EXPECT_DOUBLE_EQ(p.at(5, 1, 0)[0], 0.5);
  EXPECT_DOUBLE_EQ(p.at(15, 1, 0)[0], 0.75);
  EXPECT_DOUBLE_EQ(p.at(25, 1, 0)[0], 0.5);

  DialSchedule s;
  s.kind = "stages";
  s.stages = {{"warm", 10, {0.0}}, {"local", -1, {1.0}}};
  EXPECT_EQ(s.stage_at(9), "warm");
  EXPECT_EQ(s.stage_at(10), "local");
  EXPECT_DOUBLE_EQ(s.at(10, 1, 0)[0], 1.0);

  DialSchedule u;
  u.kind = "uniform", u.lo = 0.2, u.hi = 0.4;
  double sum = 0;
  for (int64_t step = 0; step < 4000; ++step) {
    const double v = u.at(step, 2, 7)[0];
    ASSERT_GE(v, 0.2);
    ASSERT_LT(v, 0.4);
    ASSERT_EQ(v, u.at(step, 2, 7)[1]);  // one draw per step, all layers
    ASSERT_EQ(v, u.at(step, 2, 7)[0]);  // pure function of (seed, step)
    sum += v;
  }
  EXPECT_NEAR(sum / 4000, 0.3, 0.004);  // uniform mean; sd of the mean ~0.0009
  EXPECT_NE(u.at(3, 1, 7)[0], u.at(3, 1, 8)[0]);
}

TEST(DialArg, FormsAndErrors) {
  EXPECT_EQ(dial_arg_parse("0.6"), std::vector<double>{0.6});
  EXPECT_EQ(dial_arg_parse("0,0.5,1"), (std::vector<double>{0, 0.5, 1}));
  const auto sweep = dial_arg_parse("0:1:0.1");
  ASSERT_EQ(sweep.size(), 11u);
  EXPECT_DOUBLE_EQ(sweep.back(), 1.0);
  EXPECT_NEAR(sweep[3], 0.3, 1e-12);
  for (const char* bad : {"1.5", "-0.1", "abc", "0:1", "0:1:0", "1:0:0.1", "0,,1", ""}) {
    EXPECT_THROW(dial_arg_parse(bad), ConfigError) << bad;
  }
}

// Progressive locality: λ_ℓ(t) = λ(t) · profile(ℓ), against the formula written out.
TEST(DialSchedule, ProfilesMultiplyEverySchedule) {
  DialSchedule l;
  l.kind = "linear", l.from = 0.0, l.to = 1.0, l.start = 0, l.end = 100;
  for (const auto& [kind, power] :
       std::vector<std::pair<std::string, double>>{{"linear", 1}, {"power", 5}, {"power", 0.5}}) {
    l.profile.kind = kind, l.profile.power = power;
    for (int64_t step : {0, 30, 100, 500}) {
      const auto v = l.at(step, 4, 0);
      const double lambda = std::min(1.0, step / 100.0);
      for (int64_t layer = 0; layer < 4; ++layer) {
        EXPECT_NEAR(v[layer], lambda * std::pow(layer / 3.0, power), 1e-15) << kind << power << " step " << step;
      }
    }
  }
  DialSchedule c;
  c.value = {0.8};
  c.profile.kind = "values", c.profile.values = {0.0, 0.5, 1.0};
  EXPECT_EQ(c.at(0, 3, 0), (std::vector<double>{0.0, 0.4, 0.8}));
  EXPECT_THROW(c.at(0, 2, 0), ConfigError);  // 3 values for 2 layers
  c.profile.kind = "power", c.profile.power = 5;
  EXPECT_EQ(c.at(0, 1, 0), (std::vector<double>{0.8}));  // one layer: the whole λ
  EXPECT_EQ(c.profile.describe(), "power 5");
  DialSchedule u;  // dial-conditioned training draws λ, then the profile applies
  u.kind = "uniform", u.lo = 0.2, u.hi = 0.6;
  u.profile.kind = "linear";
  const auto drawn = u.at(9, 3, 4);
  EXPECT_EQ(drawn[0], 0.0);
  EXPECT_NEAR(drawn[1] * 2, drawn[2], 1e-15);
}

TEST(DialArg, ProfileForms) {
  EXPECT_EQ(dial_profile_arg_parse("linear").kind, "linear");
  EXPECT_EQ(dial_profile_arg_parse("power:5").power, 5.0);
  EXPECT_EQ(dial_profile_arg_parse("0,0.5,1").values, (std::vector<double>{0, 0.5, 1}));
  EXPECT_THROW(dial_profile_arg_parse("power:0"), ConfigError);
  EXPECT_THROW(dial_profile_arg_parse("power:x"), ConfigError);
  EXPECT_THROW(dial_profile_arg_parse("quintic"), ConfigError);
  EXPECT_THROW(dial_profile_arg_parse("0,1.5"), ConfigError);
}
