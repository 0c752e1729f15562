// The built-in scheduler plugins, loaded as a recipe loads them, against values worked out by
// hand from transformers' formulas (optimization.py). tests/reference/check_schedules.py compares
// whole curves against a Python implementation of the same formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include <alignkit/scheduler.hpp>

#include "host/recipe_validator.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;

// Exact to rounding: the formulas are a handful of double operations.
constexpr double kTolerance = 1e-12;

struct LoadedScheduler {
  testing::RecipeFixture fixture;
  std::shared_ptr<Scheduler> scheduler;
  ScheduleShape shape;

  explicit LoadedScheduler(const std::string& scheduler_section, std::int64_t max_steps)
      : fixture("[training]\nmax_steps = " + std::to_string(max_steps) + "\n[scheduler]\n" + scheduler_section) {
    shape = schedule_shape(fixture.recipe);
    scheduler = fixture.registry.create<Scheduler>(*fixture.recipe.plugins.at("scheduler"),
                                                   fixture.recipe.section("scheduler"));
    scheduler->check(shape);
  }
  double at(std::int64_t step) const { return scheduler->lr_factor(step, shape); }
};

TEST(ConstantScheduler, WarmsUpLinearlyThenHolds) {
  LoadedScheduler s("name = \"constant\"\nwarmup_steps = 4\n", 10);
  EXPECT_NEAR(s.at(0), 0.0, kTolerance);
  EXPECT_NEAR(s.at(1), 0.25, kTolerance);
  EXPECT_NEAR(s.at(3), 0.75, kTolerance);
  EXPECT_NEAR(s.at(4), 1.0, kTolerance);
  EXPECT_NEAR(s.at(9), 1.0, kTolerance);
}

TEST(ConstantScheduler, WithoutWarmupIsOneEverywhere) {
  LoadedScheduler s("name = \"constant\"\n", 5);
  for (int step = 0; step < 5; ++step) EXPECT_EQ(s.at(step), 1.0);
}

TEST(LinearScheduler, DecaysToZeroAtTheEnd) {
  // warmup 2 of 10: 0, 0.5, then (10 - step) / 8: 1, 0.875, ..., 0.125 at step 9.
  LoadedScheduler s("name = \"linear\"\nwarmup_steps = 2\n", 10);
  EXPECT_NEAR(s.at(1), 0.5, kTolerance);
  EXPECT_NEAR(s.at(2), 1.0, kTolerance);
  EXPECT_NEAR(s.at(3), 0.875, kTolerance);
  EXPECT_NEAR(s.at(9), 0.125, kTolerance);
  EXPECT_NEAR(s.at(10), 0.0, kTolerance);
  EXPECT_NEAR(s.at(12), 0.0, kTolerance);  // clamped past the end
}

TEST(CosineScheduler, HalfWaveFromOneToZero) {
  // No warmup, 8 steps: 0.5 * (1 + cos(pi * step / 8)).
  LoadedScheduler s("name = \"cosine\"\n", 8);
  EXPECT_NEAR(s.at(0), 1.0, kTolerance);
  EXPECT_NEAR(s.at(2), 0.5 * (1 + std::cos(std::numbers::pi / 4)), kTolerance);  // 0.853553...
  EXPECT_NEAR(s.at(4), 0.5, kTolerance);
  EXPECT_NEAR(s.at(8), 0.0, kTolerance);
}

TEST(CosineScheduler, WarmupRatioAndMinLrRate) {
  // 20 steps, warmup ceil(0.1 * 20) = 2; then c + (1 - c) * cosine with c = 0.1.
  LoadedScheduler s("name = \"cosine\"\nwarmup_ratio = 0.1\nmin_lr_rate = 0.1\n", 20);
  EXPECT_EQ(s.shape.warmup_steps, 2);
  EXPECT_NEAR(s.at(1), 0.5, kTolerance);
  EXPECT_NEAR(s.at(2), 1.0, kTolerance);
  EXPECT_NEAR(s.at(11), 0.1 + 0.9 * 0.5, kTolerance);  // halfway through the decay: 0.55
  EXPECT_NEAR(s.at(20), 0.1, kTolerance);
}

TEST(CosineScheduler, FullCycleReturnsToTheTop) {
  LoadedScheduler s("name = \"cosine\"\nnum_cycles = 1.0\n", 10);
  EXPECT_NEAR(s.at(5), 0.0, kTolerance);
  EXPECT_NEAR(s.at(10), 1.0, kTolerance);
}

TEST(WarmupStableDecayScheduler, ThreePhases) {
  // 10 steps: warmup 2, decay 4 (0.4 * 10), stable 4; linear decay to min_lr_ratio 0.2.
  LoadedScheduler s(
      "name = \"warmup_stable_decay\"\nwarmup_steps = 2\ndecay_ratio = 0.4\ndecay_type = \"linear\"\n"
      "min_lr_ratio = 0.2\n",
      10);
  EXPECT_NEAR(s.at(0), 0.2, kTolerance);              // warmup starts at min_lr_ratio
  EXPECT_NEAR(s.at(1), 0.2 + 0.8 * 0.5, kTolerance);  // 0.6
  for (int step = 2; step < 6; ++step) EXPECT_EQ(s.at(step), 1.0);
  EXPECT_NEAR(s.at(6), 1.0, kTolerance);               // decay progress 0
  EXPECT_NEAR(s.at(7), 0.2 + 0.8 * 0.75, kTolerance);  // 0.8
  EXPECT_NEAR(s.at(9), 0.2 + 0.8 * 0.25, kTolerance);  // 0.4
  EXPECT_NEAR(s.at(10), 0.2, kTolerance);              // after the run: min_lr_ratio
}

TEST(WarmupStableDecayScheduler, CosineAndSqrtShapes) {
  LoadedScheduler s(
      "name = \"warmup_stable_decay\"\nwarmup_steps = 4\nnum_decay_steps = 4\nwarmup_type = \"cosine\"\n"
      "decay_type = \"1-sqrt\"\n",
      8);
  EXPECT_NEAR(s.at(2), 0.5 * (1 - std::cos(std::numbers::pi * 0.5)), kTolerance);  // 0.5
  EXPECT_NEAR(s.at(1), 0.5 * (1 - std::cos(std::numbers::pi * 0.25)), kTolerance);
  EXPECT_NEAR(s.at(5), 1 - std::sqrt(0.25), kTolerance);  // 0.5
  EXPECT_NEAR(s.at(7), 1 - std::sqrt(0.75), kTolerance);
}

TEST(WarmupStableDecayScheduler, NeedsExactlyOneDecayLength) {
  for (const char* section : {"name = \"warmup_stable_decay\"\n",
                              "name = \"warmup_stable_decay\"\nnum_decay_steps = 2\ndecay_ratio = 0.1\n"}) {
    try {
      LoadedScheduler s(section, 10);
      FAIL() << section;
    } catch (const DiagnosticError& e) {
      EXPECT_EQ(e.diagnostics().at(0).help, "set exactly one of num_decay_steps and decay_ratio");
    }
  }
}

TEST(WarmupStableDecayScheduler, RefusesPhasesLongerThanTheRun) {
  try {
    LoadedScheduler s("name = \"warmup_stable_decay\"\nwarmup_steps = 6\nnum_decay_steps = 5\n", 10);
    FAIL();
  } catch (const DiagnosticError& e) {
    const auto& d = e.diagnostics().at(0);
    EXPECT_EQ(d.message,
              "[scheduler] num_decay_steps: warmup (6) plus decay (5) is longer than the run (10 steps)");
    EXPECT_EQ(d.where.line, 6);  // the num_decay_steps line of the recipe
  }
}

TEST(WarmupStableDecayScheduler, HugeDecayDoesNotOverflowIntoAcceptance) {
  try {
    LoadedScheduler s("name = \"warmup_stable_decay\"\nwarmup_steps = 2\nnum_decay_steps = 9223372036854775807\n", 10);
    FAIL() << "a decay longer than the run must be refused";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.diagnostics().at(0).message.find("is longer than the run"), std::string::npos) << e.format();
  }
}

}  // namespace
}  // namespace alignkit
