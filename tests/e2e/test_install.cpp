// SPDX-License-Identifier: Apache-2.0
// test_install.cpp: the installed localist, as a cluster user gets it. `cmake --install`
// into a temporary prefix, then — in a mount namespace where the source and build trees
// are covered by empty directories (LibTorch, linked from the checkout's .venv, stays) —
// from an empty working directory: `localist info`,
// `prepare` and `train` of the installed quickstart config on 2 ranks through the
// installed mpirun wrapper, `eval` and `generate` on the result. Then the Debian package
// CPack builds: its files and declared dependencies (dpkg-deb), `dpkg -i`, `localist
// info` from /usr/bin, `dpkg -r` leaving nothing behind. Skips (77) without root,
// unshare or dpkg; the package part also when a localist package is already installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "tests/test_util.h"

namespace fs = std::filesystem;
using localist::test::read_text;
using localist::test::run_command;
using localist::test::TempDir;

namespace {

const std::string kBuild = fs::path(localist::test::localist_bin()).parent_path().string();

std::string quoted(const std::string& s) { return "'" + s + "'"; }

bool have(const std::string& program) { return run_command("command -v " + program + " >/dev/null 2>&1").status == 0; }

std::string version_line() { return run_command(localist::test::localist_bin() + " --version 2>&1").out; }

}  // namespace

TEST(Install, RunsFromAnEmptyDirectoryWithoutTheSourceOrBuildTree) {
  TempDir tmp;
  const std::string prefix = tmp / "opt/localist", work = tmp / "work";
  fs::create_directories(work);
  const auto inst = run_command("cmake --install " + quoted(kBuild) + " --prefix " + quoted(prefix) + " 2>&1");
  ASSERT_EQ(inst.status, 0) << inst.out;
  for (const char* f : {"bin/localist", "bin/localist-mpirun", "libexec/localist/localist-spm",
                        "share/localist/configs/quickstart.yaml", "share/localist/slurm/train.sbatch",
                        "share/localist/corpora/wikitext2-valid.txt", "share/doc/localist/LICENSE",
                        "share/doc/localist/CHANGELOG.md", "share/doc/localist/docs/examples/read_checkpoint.py"}) {
    EXPECT_TRUE(fs::exists(prefix + "/" + f)) << f;
  }
  // The installed config reads the installed corpora; the template runs the installed binary.
  EXPECT_NE(read_text(prefix + "/share/localist/configs/quickstart.yaml")
                .find("path: " + prefix + "/share/localist/corpora/wikitext2-valid.txt"),
            std::string::npos);
  EXPECT_NE(read_text(prefix + "/share/localist/slurm/train.sbatch")
                .find("INSTALLED_LOCALIST=\"" + prefix + "/bin/localist\""),
            std::string::npos);

  if (::geteuid() != 0 || !have("unshare")) GTEST_SKIP() << "needs root and unshare to hide the source and build trees";
  const std::string src = fs::canonical(localist::test::source_dir()).string();
  const std::string build = fs::canonical(kBuild).string();
  const std::string cfg = prefix + "/share/localist/configs/quickstart.yaml";
  // LibTorch stays where the binary was linked to it (its RUNPATH): when that is the
  // checkout's .venv, its site-packages is held aside and mounted back over the hidden tree.
  const auto ldd = run_command("ldd " + quoted(prefix + "/bin/localist") + " | awk '/libtorch_cpu.so/{print $3}'");
  ASSERT_FALSE(ldd.out.empty()) << "the installed binary does not find LibTorch";
  // site-packages: torch/lib and the NVIDIA wheels beside it that torch's RPATH names.
  const std::string torch_lib =
      fs::canonical(ldd.out.substr(0, ldd.out.find('\n'))).parent_path().parent_path().parent_path().string();
  std::string keep_torch;
  if (torch_lib.rfind(src + "/", 0) == 0) {
    const std::string hold = tmp / "torch-lib";
    fs::create_directories(hold);
    keep_torch = "mount --bind " + quoted(torch_lib) + " " + quoted(hold) + "; mount -t tmpfs none " + quoted(src) +
                 "; mkdir -p " + quoted(torch_lib) + "; mount --bind " + quoted(hold) + " " + quoted(torch_lib) + "; ";
  } else {
    keep_torch = "mount -t tmpfs none " + quoted(src) + "; ";
  }
  // Covered by empty tmpfs mounts inside the namespace only; the test itself keeps them.
  const std::string script =
      "set -e; " + keep_torch +
      (build.rfind(src + "/", 0) == 0 ? std::string() : "mount -t tmpfs none " + quoted(build) + "; ") + "test ! -e " +
      quoted(build + "/localist") + "; cd " + quoted(work) + "; export PATH=" + quoted(prefix + "/bin") +
      ":$PATH; unset LOCALIST LOCALIST_BIN LOCALIST_SPM_HELPER LOCALIST_SOURCE_DIR; "
      "localist info; localist --version; "
      "localist prepare " +
      quoted(cfg) +
      "; "
      "localist-mpirun -n 2 " +
      quoted(cfg) +
      " --set train.steps=6 --set train.log_every=3 "
      "--set train.checkpoint_every=6 --set train.eval_every=0; "
      "localist eval --checkpoint runs/quickstart --dial 0,1 --windows 2; "
      "localist generate --checkpoint runs/quickstart --dial 0.5 --prompt 'The ' --max-tokens 8";
  const auto r = run_command("unshare -m --propagation private bash -c " + quoted(script) + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  if (std::getenv("LOCALIST_TEST_VERBOSE")) std::cout << r.out;
  EXPECT_NE(r.out.find("CPU kernels"), std::string::npos) << r.out;  // `info` ran
  EXPECT_NE(r.out.find(version_line().substr(0, version_line().find('\n'))), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(work + "/runs/quickstart/metrics.jsonl"));
  EXPECT_TRUE(fs::exists(work + "/shards/byte"));
  // Nothing was written into the installation.
  EXPECT_FALSE(fs::exists(prefix + "/share/localist/configs/runs"));
}

TEST(Install, DebianPackageDeclaresItsDependenciesAndInstallsCleanly) {
  if (::geteuid() != 0 || !have("dpkg") || !have("cpack")) GTEST_SKIP() << "needs root, dpkg and cpack";
  if (run_command("dpkg-query -W -f='${Status}' localist 2>/dev/null | grep -q 'install ok'").status == 0) {
    GTEST_SKIP() << "a localist package is installed on this machine; not replacing it";
  }
  TempDir tmp;
  const auto pack = run_command("cd " + quoted(kBuild) + " && cpack -G DEB -B " + quoted(tmp.path()) + " 2>&1");
  ASSERT_EQ(pack.status, 0) << pack.out;
  const auto found = run_command("ls " + quoted(tmp.path()) + "/localist_*_amd64.deb 2>/dev/null | head -n1");
  const std::string deb = found.out.substr(0, found.out.find('\n'));
  ASSERT_FALSE(deb.empty()) << pack.out;
  const std::string version = version_line();
  EXPECT_NE(deb.find("localist_" + version.substr(9, version.find(' ', 9) - 9) + "_amd64.deb"), std::string::npos)
      << deb << " vs " << version;

  const auto files = run_command("dpkg-deb -c " + quoted(deb));
  ASSERT_EQ(files.status, 0) << files.out;
  for (const char* f : {"./usr/bin/localist", "./usr/bin/localist-mpirun", "./usr/libexec/localist/localist-spm",
                        "./usr/share/localist/configs/quickstart.yaml", "./usr/share/localist/slurm/train.sbatch",
                        "./usr/share/doc/localist/LICENSE"}) {
    EXPECT_NE(files.out.find(std::string(f) + "\n"), std::string::npos) << f << " not in the package:\n" << files.out;
  }
  EXPECT_EQ(files.out.find("./usr/local"), std::string::npos) << files.out;
  const auto info = run_command("dpkg-deb -I " + quoted(deb));
  ASSERT_EQ(info.status, 0) << info.out;
  for (const char* dep :
       {"libhdf5", "libyaml-cpp", "libopenmpi", "openmpi-bin", "libsentencepiece", "libre2", "libssl"}) {
    EXPECT_NE(info.out.find(dep), std::string::npos) << dep << " not declared:\n" << info.out;
  }
  // LibTorch (a wheel, not a Debian package) is named in the description with its place.
  EXPECT_NE(info.out.find("Needs LibTorch 2.11"), std::string::npos) << info.out;

  const auto in = run_command("dpkg -i " + quoted(deb) + " 2>&1");
  ASSERT_EQ(in.status, 0) << in.out;
  const auto run = run_command("cd / && env -u LOCALIST_BIN /usr/bin/localist info 2>&1");
  const auto rm = run_command("dpkg -r localist 2>&1");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find(version.substr(0, version.find('\n'))), std::string::npos) << run.out << " vs " << version;
  ASSERT_EQ(rm.status, 0) << rm.out;
  EXPECT_FALSE(fs::exists("/usr/bin/localist"));
  EXPECT_FALSE(fs::exists("/usr/libexec/localist"));
  EXPECT_FALSE(fs::exists("/usr/share/localist"));
}
