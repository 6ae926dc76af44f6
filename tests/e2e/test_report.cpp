// SPDX-License-Identifier: Apache-2.0
// test_report.cpp: `localist report` end to end on a model trained with a recruited block
// (configs/recruitment.yaml, Shakespeare held out): the JSON's metrics equal what `eval`
// writes for the same windows, dial and rules, a point rule's own fidelity equals eval's
// rule fidelity (two separate computations), the card's files and decisions match the
// checkpoint; the page passes in headless Chromium with the network refused
// (tests/browser/report_browser.py: no console error, every section, a real click on a
// token shows its attention targets, a screenshot); bad input gets one line and no file.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/e2e/recruitment_fixture.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using localist::test::read_text;
using localist::test::run_command;
using localist::test::TempDir;

namespace {

std::string bin() { return localist::test::localist_bin(); }

struct Shell {
  int status;
  std::string out, err;
};

class Report : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    YAML::Node cfg = localist::test::recruitment_fixture_config(*dir_, true);
    cfg["run"]["name"] = "report";
    cfg["run"]["dir"] = "run";
    localist::test::write_yaml(*dir_ / "c.yaml", cfg);
    localist::test::write_text(*dir_ / "rules.yaml",
                               "rules:\n  - {name: punctuation-to-space, kind: point, query: {regex: \"[.,;:]\"}, "
                               "target: {regex: \" \"}}\n");
    ASSERT_EQ(sh(bin() + " prepare c.yaml").status, 0);
    Shell t = sh(bin() + " train c.yaml");
    ASSERT_EQ(t.status, 0) << t.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static Shell sh(const std::string& cmd) {
    const std::string err = *dir_ / "stderr.txt";
    auto r = run_command("cd '" + dir_->path() + "' && " + cmd + " 2>'" + err + "'");
    return {r.status, r.out, read_text(err)};
  }
  static nlohmann::json json_file(const std::string& p) { return nlohmann::json::parse(read_text(*dir_ / p)); }
  static TempDir* dir_;
};
TempDir* Report::dir_ = nullptr;

void expect_close(double a, double b, double rel, const std::string& what) {
  EXPECT_LE(std::abs(a - b), rel * std::max(1.0, std::abs(b))) << what << ": " << a << " vs " << b;
}

}  // namespace

TEST_F(Report, JsonEqualsEvalAndTheCheckpoint) {
  Shell r = sh(bin() + " report --checkpoint run --windows 3 --dial 0.5 --rules rules.yaml --out rep");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("wrote "), std::string::npos);
  ASSERT_TRUE(fs::exists(*dir_ / "rep/report.html"));
  const auto j = json_file("rep/report.json");
  EXPECT_EQ(j.at("schema"), "localist-report");
  EXPECT_EQ(j.at("schema_version"), 1);

  // The same windows, dial and rules through `eval`: every metric equal.
  Shell e = sh(bin() + " eval --checkpoint run --windows 3 --dial 0.5 --rules rules.yaml --out ev");
  ASSERT_EQ(e.status, 0) << e.err;
  const auto sweep = json_file("ev/sweep.json");
  const auto& want = sweep.is_array() ? sweep.at(0) : sweep.at("rows").at(0);
  const auto& got = j.at("evaluation").at("metrics");
  int compared = 0;
  for (const auto& [key, value] : want.items()) {
    ASSERT_TRUE(got.contains(key)) << key;
    if (value.is_number()) {
      expect_close(got.at(key).get<double>(), value.get<double>(), 1e-12, key);
      ++compared;
    }
  }
  EXPECT_GE(compared, 20);
  EXPECT_EQ(j.at("evaluation").at("windows"), 6);  // 3 per held-out source, two sources
  EXPECT_EQ(j.at("token_view").at("windows").size(), 6u);
  EXPECT_EQ(j.at("sweep").size(), 11u);

  // The one point rule: its own fidelity (report/token_view.cpp) equals eval's rule
  // fidelity (model/metrics.cpp), two computations of one definition.
  const auto& rules = j.at("rules").at("rules");
  const auto rule = std::find_if(rules.begin(), rules.end(), [](const auto& x) { return x.at("kind") == "point"; });
  ASSERT_NE(rule, rules.end());
  EXPECT_GE(rule->at("firings").get<int64_t>(), 5);
  EXPECT_EQ(rule->at("pairs").get<int64_t>(), want.at("rule_pairs").get<int64_t>());
  expect_close(rule->at("fidelity_mass").get<double>(), want.at("rule_fidelity_mass").get<double>(), 1e-9, "mass");
  expect_close(rule->at("fidelity_top1").get<double>(), want.at("rule_fidelity_top1").get<double>(), 1e-9, "top-1");

  // The bounds' histograms count every bound query once.
  const auto& b = j.at("bounds");
  int64_t eps = 0, lam = b.at("lambda_star_below").get<int64_t>() + b.at("lambda_star_above").get<int64_t>();
  for (const auto& c : b.at("epsilon_histogram").at("counts")) eps += c.get<int64_t>();
  for (const auto& c : b.at("lambda_star_histogram").at("counts")) lam += c.get<int64_t>();
  EXPECT_EQ(eps, b.at("queries").get<int64_t>());
  EXPECT_EQ(lam, b.at("queries").get<int64_t>());
  EXPECT_EQ(b.at("epsilon_holds"), 1.0);

  // The card: files as the index lists them, the recruited block with its decision.
  const auto& card = j.at("card");
  Shell ins = sh(bin() + " inspect run");
  ASSERT_EQ(ins.status, 0);
  ASSERT_FALSE(card.at("files").empty());
  for (const auto& f : card.at("files")) {
    EXPECT_NE(ins.out.find(f.at("sha256").get<std::string>().substr(0, 16)), std::string::npos) << f.at("name");
    EXPECT_TRUE(f.at("verified").get<bool>());
  }
  int recruited = 0;
  for (const auto& blk : card.at("blocks")) {
    if (blk.at("origin") != "recruited") continue;
    ++recruited;
    EXPECT_EQ(blk.at("domain"), "drama");
    EXPECT_TRUE(blk.at("decision").at("accepted").get<bool>());
  }
  EXPECT_GE(recruited, 1);
  EXPECT_TRUE(j.at("curves").at("found").get<bool>());
  EXPECT_EQ(j.at("curves").at("llms").at("main").at("step").back(), 299);
  // The MFU curve and the mean time split of the logged steps after the first.
  const auto& main_curves = j.at("curves").at("llms").at("main");
  ASSERT_EQ(main_curves.at("mfu").size(), main_curves.at("step").size());
  for (const auto& m : main_curves.at("mfu")) EXPECT_TRUE(m.is_number() && m.get<double>() > 0) << m;
  const auto& split = main_curves.at("time_ms");
  EXPECT_EQ(split.at("steps").get<int64_t>(), static_cast<int64_t>(main_curves.at("step").size()) - 1);
  double parts = 0;
  for (const char* k :
       {"eval", "checkpoint", "boundary", "rounds", "data", "forward", "backward", "sync", "optimizer", "other"})
    parts += split.at(k).get<double>();
  EXPECT_NEAR(parts, split.at("step").get<double>(), 1e-6 * split.at("step").get<double>()) << split;
  EXPECT_GT(split.at("forward").get<double>(), 0) << split;
  EXPECT_NE(card.at("software").at("commit"), "");
  EXPECT_EQ(card.at("method").size(), 3u);

  // The token view's block of each token is one of the active blocks, and its π sums to 1.
  const auto& tv = j.at("token_view");
  const auto& w0 = tv.at("windows").at(0);
  for (const auto& l : w0.at("layers")) {
    for (size_t i = 0; i < l.at("block").size(); ++i) {
      double s = 0;
      for (const auto& p : l.at("pi").at(i)) s += p.get<double>();
      EXPECT_NEAR(s, 1.0, 1e-3);
      EXPECT_NE(std::find(tv.at("active_slots").begin(), tv.at("active_slots").end(), l.at("block").at(i)),
                tv.at("active_slots").end());
    }
  }
}

TEST_F(Report, OpensInHeadlessChromiumWithoutNetwork) {
  ASSERT_EQ(run_command("command -v chromium >/dev/null").status, 0)
      << "Debian's chromium is needed for the browser test: run tools/setup.sh";
  Shell r = sh(bin() + " report --checkpoint run --windows 4 --rules rules.yaml --out page");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string shot = *dir_ / "page/screenshot.png";
  Shell b = sh("timeout 120 /usr/bin/python3 " + localist::test::source_dir() +
               "/tests/browser/report_browser.py page/report.html " + shot + " --expect-rules");
  EXPECT_EQ(b.status, 0) << b.out << b.err;
  const auto summary = nlohmann::json::parse(b.out);
  EXPECT_TRUE(summary.at("console_errors").empty()) << b.out;
  EXPECT_GT(summary.at("attention_targets").get<int>(), 0) << b.out;
  EXPECT_EQ(summary.at("resources_fetched").get<int>(), 0) << b.out;
  EXPECT_GT(summary.at("low_fidelity_links").get<int>(), 0) << b.out;
  ASSERT_TRUE(fs::exists(shot));
  EXPECT_EQ(read_text(shot).substr(1, 3), "PNG");
  // Kept for a look: the test's output directory, when ctest gives one.
  if (const char* out = std::getenv("LOCALIST_TEST_OUTPUT")) {
    std::error_code ec;
    fs::create_directories(out, ec);
    fs::copy_file(shot, fs::path(out) / "report-screenshot.png", fs::copy_options::overwrite_existing, ec);
  }
}

TEST_F(Report, TextFileAndBadInput) {
  // A text of 2.5 windows: two full windows and a shorter last one, all in the view.
  const std::string text = read_text(dir_->path() + "/drama-test.txt").substr(0, 64 * 2 + 33);
  localist::test::write_text(*dir_ / "t.txt", text);
  Shell ok = sh(bin() + " report --checkpoint run --text t.txt --domain drama --sweep 0,1 --out textrep");
  ASSERT_EQ(ok.status, 0) << ok.err;
  const auto j = json_file("textrep/report.json");
  const auto& ws = j.at("token_view").at("windows");
  ASSERT_EQ(ws.size(), 3u);
  EXPECT_EQ(ws.at(0).at("tokens").size(), 64u);
  EXPECT_EQ(ws.at(2).at("tokens").size(), 32u);  // 161 bytes: windows of 65 sharing one token
  EXPECT_EQ(ws.at(0).at("domain"), "drama");
  EXPECT_EQ(j.at("evaluation").at("metrics").at("tokens"), 160);
  EXPECT_EQ(j.at("sweep").size(), 2u);
  // The recruited block's route rule fires for every token of its domain.
  const auto& rules = j.at("rules").at("rules");
  ASSERT_FALSE(rules.empty());
  EXPECT_EQ(rules.at(0).at("kind"), "route");
  EXPECT_EQ(rules.at(0).at("firings"), 160);

  auto refused = [&](const std::string& args, int status, const std::string& needle) {
    Shell r = sh(bin() + " report " + args + " --out bad");
    EXPECT_EQ(r.status, status) << args << ": " << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(*dir_ / "bad")) << args << " wrote its directory";
  };
  localist::test::write_text(*dir_ / "latin1.txt", "caf\xe9 au lait\n");
  refused("--checkpoint run --text latin1.txt", 2, "not UTF-8 text (invalid byte 0xe9 at offset 3)");
  refused("--checkpoint run --text t.txt --max-tokens 100", 2, "161 tokens, more than the report's limit of 100");
  refused("--checkpoint run --text t.txt --domain poetry", 2, "--domain poetry: not a domain of this model's data");
  refused("--checkpoint run --text t.txt --windows 2", 2, "--windows");
  refused("--checkpoint run --text missing.txt", 2, "missing.txt: cannot read the file");
  refused("--checkpoint run --dial 1.5", 2, "1.5");
  refused("--checkpoint nowhere", 1, "nowhere");
  // A damaged checkpoint: one flipped byte in a rank file fails its checksum.
  fs::create_directories(*dir_ / "damaged/checkpoints");
  const std::string step = "damaged/checkpoints/step-00000300";
  fs::copy(*dir_ / "run/checkpoints/step-00000300", *dir_ / step, fs::copy_options::recursive);
  ASSERT_EQ(run_command("cd '" + dir_->path() + "' && printf '\\xff' | dd of=" + step +
                        "/rank-00000.h5 bs=1 seek=4000 conv=notrunc status=none")
                .status,
            0);
  refused("--checkpoint " + step, 1, "rank-00000.h5");
}
