// SPDX-License-Identifier: Apache-2.0
// test_export.cpp: `localist export --format hf` end to end. A small byte-level model
// trained here (one rank, and two ranks with its blocks split, bp 2) is exported and
// loaded in transformers from the project's venv (tests/e2e/export_check.h): logits,
// per-token losses, attention, routing and greedy generation equal localist's, the
// tensors equal the checkpoint's bit for bit (bf16: its rounding); bad input gives one
// line and writes nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "tests/e2e/export_check.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using localist::test::CommandResult;
using localist::test::TempDir;

namespace {

std::string bin() { return localist::test::localist_bin(); }

class Export : public ::testing::Test {
 protected:
  // One small model for the suite: trained once (20 steps, λ 0.3 and 0.8 by layer).
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string text = localist::test::read_text(localist::test::corpus("tinyshakespeare.txt"));
    localist::test::write_text(*dir_ / "train.txt", text.substr(0, 60000));
    localist::test::write_text(*dir_ / "held.txt", text.substr(60000, 12000));
    localist::test::write_text(
        *dir_ / "c.yaml",
        "run:\n  dir: run\ndata:\n  shard_dir: shards\n  sources:\n"
        "    - {name: text, path: train.txt, split: blank_line, domain: drama}\n"
        "    - {name: held, path: held.txt, split: blank_line, domain: drama, train: false}\n"
        "model:\n  context: 32\n  d_model: 32\n  head_dim: 8\n  k_initial: 3\n  k_max: 4\n  anchor_dim: 4\n"
        "train:\n  steps: 20\n  global_batch: 8\n  micro_batch: 4\n  eval_windows: 2\n"
        "  dial: [0.3, 0.8]\n");
    ASSERT_EQ(sh("prepare c.yaml").status, 0);
    const CommandResult t = sh("train c.yaml");
    ASSERT_EQ(t.status, 0) << t.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static CommandResult sh(const std::string& args, const std::string& prefix = "") {
    return localist::test::run_command("cd '" + dir_->path() + "' && " + prefix + bin() + " " + args + " 2>&1");
  }
  static std::string ckpt() { return dir_->path() + "/run/checkpoints/step-00000020"; }
  static TempDir* dir_;
};
TempDir* Export::dir_ = nullptr;

void expect_one_line_error(const CommandResult& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "more than one line: " << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
}

// No temporary sibling of an export is left behind.
void expect_no_temporaries(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }
}

}  // namespace

// The fp32 export against localist in full; the bf16 export's tensors are the
// checkpoint's rounded, exactly (its logits are the rounded weights': 6e-2 relative at
// most on this model at λ = 1 with route rules, so they are only loaded and run).
TEST_F(Export, TheExportedModelInTransformersIsLocalistsInFp32AndBf16) {
  const CommandResult e = sh("export --checkpoint run --format hf --out hf");
  ASSERT_EQ(e.status, 0) << e.out;
  for (const char* f : {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                        "tokenizer_config.json", "configuration_localist.py", "modeling_localist.py", "README.md"}) {
    EXPECT_TRUE(fs::exists(*dir_ / ("hf/" + std::string(f)))) << f;
  }
  const std::string card = localist::test::read_text(*dir_ / "hf/README.md");
  EXPECT_EQ(card.rfind("---\n", 0), 0u);
  for (const char* s : {"model-index:", "## Model Examination", "## Factors", "## Training data", "arXiv:2510.09338"}) {
    EXPECT_NE(card.find(s), std::string::npos) << s;
  }
  const std::string config = localist::test::read_text(*dir_ / "hf/config.json");
  EXPECT_NE(config.find("\"AutoModelForCausalLM\": \"modeling_localist.LocalistForCausalLM\""), std::string::npos);
  EXPECT_NE(config.find("\"active_blocks\": [\n    0,\n    1,\n    2\n  ]"), std::string::npos) << config;
  ASSERT_EQ(sh("export --checkpoint run --dtype bf16 --out hf16 --windows 1").status, 0);
  EXPECT_NE(localist::test::read_text(*dir_ / "hf16/config.json").find("\"dtype\": \"bfloat16\""), std::string::npos);
  const auto r = localist::test::export_check_run(
      dir_->path(), {localist::test::export_check_job(dir_->path(), ckpt(), "main", "hf", "ROMEO: What"),
                     localist::test::export_check_job(dir_->path(), ckpt(), "main", "hf16", "", "--tolerance 0.2")});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("greedy generate at"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("round trip: tensors not equal bit for bit (bf16): 0"), std::string::npos) << r.out;
  std::fprintf(stderr, "%s", r.out.c_str());
}

TEST_F(Export, BadInputGivesOneLineAndWritesNothing) {
  fs::create_directories(*dir_ / "full");
  localist::test::write_text(*dir_ / "full/keep.txt", "x");
  expect_one_line_error(sh("export --checkpoint run --out full"), 2, "exists and is not an empty directory");
  EXPECT_EQ(localist::test::read_text(*dir_ / "full/keep.txt"), "x");
  expect_one_line_error(sh("export --checkpoint run --llm nosuch --out bad1"), 1, "nosuch");
  EXPECT_FALSE(fs::exists(*dir_ / "bad1"));
  expect_one_line_error(sh("export --checkpoint run --format onnx --out bad2"), 2, "--format");
  // A damaged copy of the checkpoint: one rank file cut short.
  fs::create_directories(*dir_ / "damaged/checkpoints");
  fs::copy(ckpt(), *dir_ / "damaged/checkpoints/step-00000020", fs::copy_options::recursive);
  const std::string rank = *dir_ / "damaged/checkpoints/step-00000020/rank-00000.h5";
  fs::resize_file(rank, fs::file_size(rank) / 2);
  const CommandResult d = sh("export --checkpoint damaged --out bad3");
  EXPECT_EQ(d.status, 1) << d.out;
  EXPECT_EQ(d.out.find('\n'), d.out.size() - 1) << d.out;
  EXPECT_FALSE(fs::exists(*dir_ / "bad3"));
  expect_no_temporaries(dir_->path());
}

// A bp-2 checkpoint (blocks in two rank files) exports whole; a SentencePiece model's
// tokenizer gives localist's ids in AutoTokenizer (a hard sample); both as above.
TEST_F(Export, BlockParallelAndSentencePieceCheckpointsExport) {
  const CommandResult t = sh("train c.yaml --set run.dir=bp2 --set train.steps=6 --set distributed.block_parallel=2",
                             "OMP_NUM_THREADS=1 timeout 300 mpirun -np 2 --oversubscribe ");
  ASSERT_EQ(t.status, 0) << t.out;
  ASSERT_EQ(sh("export --checkpoint bp2 --out hfbp2 --windows 1").status, 0);
  std::string cfg = localist::test::read_text(*dir_ / "c.yaml");
  cfg.replace(cfg.find("  shard_dir: shards\n"), 19,
              "  shard_dir: spm-shards\n  tokenizer: {kind: sentencepiece, vocab_size: 400, model_type: unigram}\n");
  localist::test::write_text(*dir_ / "spm.yaml", cfg);
  ASSERT_EQ(sh("prepare spm.yaml").status, 0);
  const CommandResult s = sh("train spm.yaml --set run.dir=spm --set train.steps=6");
  ASSERT_EQ(s.status, 0) << s.out;
  ASSERT_EQ(sh("export --checkpoint spm --out hfspm --windows 1").status, 0);
  EXPECT_TRUE(fs::exists(*dir_ / "hfspm/tokenizer.model"));
  EXPECT_TRUE(fs::exists(*dir_ / "hfspm/tokenization_localist.py"));
  const auto r = localist::test::export_check_run(
      dir_->path(), {localist::test::export_check_job(dir_->path(), dir_->path() + "/bp2/checkpoints/step-00000006",
                                                      "main", "hfbp2", ""),
                     localist::test::export_check_job(dir_->path(), dir_->path() + "/spm/checkpoints/step-00000006",
                                                      "main", "hfspm", "ROMEO: What")});
  EXPECT_EQ(r.status, 0) << r.out;
}

// model.init_from (docs/import.md): a random GPT-2 written by transformers, imported with
// its 4 heads as 2 blocks of 2 and 2 free slots; one step at lr 0 writes a checkpoint of
// the imported weights. At λ = 0 localist's logits on real text are GPT2LMHeadModel's.
namespace {

// The suite's run as an import (g.yaml): a random GPT-2 written by transformers (gpt2src,
// with the damaged variants beside it) with its own byte-level BPE, its 4 heads as 2
// blocks of 2 and 2 free slots, one step at lr 0. Empty when making the source failed.
std::string write_imported_config(const TempDir& dir) {
  const std::string py = localist::test::env_or_empty("LOCALIST_PYTHON") + " " + localist::test::source_dir() +
                         "/tests/export/make_gpt2.py ";
  if (!fs::exists(dir / "gpt2src/model.safetensors")) {
    const CommandResult made = localist::test::run_command("cd '" + dir.path() + "' && " + py +
                                                           "gpt2src --bad-variants --tokenizer train.txt 2>&1");
    if (made.status != 0) return "make_gpt2.py failed: " + made.out;
  }
  std::string cfg = localist::test::read_text(dir / "c.yaml");
  // GPT-2's byte-level BPE, from the source's own files.
  const std::string shard_line = "  shard_dir: shards\n";
  cfg.replace(cfg.find(shard_line), shard_line.size(),
              "  shard_dir: shards-gpt2\n  tokenizer: {kind: bpe, model: gpt2src}\n");
  cfg.replace(cfg.find("model:\n"), cfg.find("train:\n") - cfg.find("model:\n"),
              "model:\n  context: 32\n  d_model: 32\n  head_dim: 8\n  heads_per_block: 2\n  k_initial: 2\n"
              "  k_max: 4\n  anchor_dim: 4\n  activation: gelu_tanh\n  init_from: {format: hf, path: gpt2src}\n");
  cfg.replace(cfg.find("  steps: 20\n"), 12, "  steps: 1\n  lr: 0\n  min_lr: 0\n  warmup_steps: 0\n");
  cfg.replace(cfg.find("  dial: [0.3, 0.8]"), 18, "  dial: 0");
  localist::test::write_text(dir / "g.yaml", cfg);
  return "";
}

}  // namespace

TEST_F(Export, AnImportedGpt2IsTheSourceAtDialZero) {
  const std::string made = write_imported_config(*dir_);
  ASSERT_EQ(made, "");
  ASSERT_EQ(sh("prepare g.yaml").status, 0);
  const CommandResult t = sh("train g.yaml --set run.dir=imported");
  ASSERT_EQ(t.status, 0) << t.out;
  EXPECT_NE(t.out.find("started from gpt2src (28 tensors; its 4 heads are blocks 0-1)"), std::string::npos) << t.out;
  ASSERT_EQ(sh("export --checkpoint imported --out hfgpt2 --windows 1").status, 0);
  const auto r = localist::test::export_check(dir_->path(), dir_->path() + "/imported/checkpoints/step-00000001",
                                              "main", "hfgpt2", "ROMEO: What", "--gpt2 gpt2src", "held.txt");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ok   GPT-2: localist's logits"), std::string::npos) << r.out;
  // The BPE checkpoint through eval (a per-layer profile) and the audit report.
  const CommandResult ev =
      sh("eval --checkpoint imported/checkpoints/step-00000001 --dial 0,1 --dial-profile power:5 --windows 1 --out ev");
  EXPECT_EQ(ev.status, 0) << ev.out;
  EXPECT_TRUE(fs::exists(*dir_ / "ev/sweep.json")) << ev.out;
  const CommandResult rep = sh("report --checkpoint imported --out rep --windows 1 --sweep 0:1:0.5");
  EXPECT_EQ(rep.status, 0) << rep.out;
  EXPECT_NE(localist::test::read_text(*dir_ / "rep/report.json").find("own_fidelity_per_layer"), std::string::npos);

  // Bad sources: one line naming the file and what does not fit, exit 2, no run directory.
  for (const auto& [variant, needle] : std::vector<std::pair<std::string, std::string>>{
           {"llama", "config.json: model_type 'llama' is not a GPT-2-family model"},
           {"missing", "model.safetensors: tensor transformer.h.1.mlp.c_fc.bias is missing"},
           {"shape", "model.safetensors: tensor transformer.h.0.attn.c_proj.weight has shape (32, 16)"}}) {
    const CommandResult b = sh("train g.yaml --set run.dir=bad --set model.init_from.path=gpt2src-" + variant);
    expect_one_line_error(b, 2, needle);
    EXPECT_FALSE(fs::exists(*dir_ / "bad")) << variant;
  }
  expect_one_line_error(sh("train g.yaml --set run.dir=bad --set model.init_from.path=nosuch"), 2,
                        "nosuch/config.json: no such file");
  expect_one_line_error(sh("train g.yaml --set run.dir=bad --set model.heads_per_block=3"), 2,
                        "n_head 4 is not a multiple of model.heads_per_block 3");
  expect_one_line_error(sh("train g.yaml --set run.dir=bad --set model.activation=gelu"), 2,
                        "activation_function 'gelu_new' needs model.activation: gelu_tanh");
  EXPECT_FALSE(fs::exists(*dir_ / "bad"));
}

// Recruitment on an imported model (docs/import.md): the imported (random) GPT-2 trains on
// Shakespeare, WikiText joins at step 10; a round switches on the free slot beyond the
// imported heads (slot 2, zero output projection at the start) for a domain that pays, the
// run goes on, and the grown model, exported, is localist's in transformers — its recruited
// block and domain route included.
TEST_F(Export, AnImportedGpt2RecruitsABlockIntoAFreeSlot) {
  const std::string made = write_imported_config(*dir_);
  ASSERT_EQ(made, "");
  localist::test::write_text(*dir_ / "wiki.txt",
                             localist::test::read_text(localist::test::corpus("wikitext2-valid.txt")).substr(0, 60000));
  std::string cfg = localist::test::read_text(*dir_ / "g.yaml");
  const std::string held = "    - {name: held,";
  cfg.insert(cfg.find(held),
             "    - {name: wiki, path: wiki.txt, split: wikitext, domain: encyclopedia, start_step: 10}\n");
  const std::string one_step = "  steps: 1\n  lr: 0\n  min_lr: 0\n";
  cfg.replace(cfg.find(one_step), one_step.size(), "  steps: 60\n  lr: 3.0e-3\n  min_lr: 3.0e-4\n");
  cfg +=
      "recruitment:\n  enabled: true\n  interval: 20\n  probe_windows: 16\n  phi: 0.9\n  n_min: 64\n"
      "  n_try: 10\n  horizon_steps: 100000\n";
  localist::test::write_text(*dir_ / "grow.yaml", cfg);
  ASSERT_EQ(sh("prepare grow.yaml").status, 0);
  const CommandResult t = sh("train grow.yaml --set run.dir=grown");
  ASSERT_EQ(t.status, 0) << t.out;
  int accepted = 0;
  std::istringstream lines(localist::test::read_text(*dir_ / "grown/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const auto r = nlohmann::json::parse(line);
    if (r.value("event", "") != "recruitment" || r.value("decision", "") != "accepted") continue;
    ++accepted;
    EXPECT_EQ(r.at("slot"), 2 + accepted - 1) << "the first free slot beyond the imported heads: " << r.dump();
    EXPECT_TRUE(r.at("route_domain") == "drama" || r.at("route_domain") == "encyclopedia") << r.dump();
  }
  ASSERT_GE(accepted, 1) << localist::test::read_text(*dir_ / "grown/metrics.jsonl");
  ASSERT_EQ(sh("export --checkpoint grown --out hfgrown --windows 1").status, 0);
  const auto r = localist::test::export_check(dir_->path(), dir_->path() + "/grown/checkpoints/step-00000060", "main",
                                              "hfgrown", "", "", "held.txt");
  EXPECT_EQ(r.status, 0) << r.out;
}

// --format gpt2 (docs/export.md): a model trained here whose 4 blocks of one head of 8 fill
// d_model 32 is, at λ = 0, a plain GPT2LMHeadModel — transformers' own GPT-2 code (no remote
// code) gives localist's logits, its tokenizer localist's ids — and imported back
// (model.init_from) and exported again it is the same file. A model whose heads do not fill
// d_model, or a whole pool, is refused in one line with nothing written.
TEST_F(Export, AsGpt2AModelIsItsDialZeroReadingAndImportsBack) {
  std::string cfg = localist::test::read_text(*dir_ / "c.yaml");
  cfg.replace(cfg.find("  k_initial: 3\n  k_max: 4\n"), 26, "  k_initial: 4\n  k_max: 4\n");
  localist::test::write_text(*dir_ / "g4.yaml", cfg);
  ASSERT_EQ(sh("train g4.yaml --set run.dir=run4").status, 0);
  const std::string ckpt4 = dir_->path() + "/run4/checkpoints/step-00000020";
  const CommandResult e = sh("export --checkpoint run4 --format gpt2 --out asgpt2 --windows 1");
  ASSERT_EQ(e.status, 0) << e.out;
  EXPECT_NE(e.out.find("exported as GPT-2 (its λ = 0 reading) LLM main"), std::string::npos) << e.out;
  EXPECT_NE(localist::test::read_text(*dir_ / "asgpt2/config.json").find("\"GPT2LMHeadModel\""), std::string::npos);
  ASSERT_EQ(sh("export --checkpoint run4 --out hf4 --windows 1").status, 0);
  const auto r = localist::test::export_check(dir_->path(), ckpt4, "main", "hf4", "", "--gpt2 asgpt2", "held.txt");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ok   GPT-2: localist's logits at λ=0 against transformers' GPT2LMHeadModel"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ok   GPT-2 directory's tokenizer"), std::string::npos) << r.out;
  // Imported back (one step at lr 0) and exported again: the same tensors, bit for bit.
  cfg.replace(cfg.find("  steps: 20\n"), 12, "  steps: 1\n  lr: 0\n  min_lr: 0\n  warmup_steps: 0\n");
  cfg.replace(cfg.find("  anchor_dim: 4\n"), 16, "  anchor_dim: 4\n  init_from: {format: hf, path: asgpt2}\n");
  localist::test::write_text(*dir_ / "back.yaml", cfg);
  const CommandResult b = sh("train back.yaml --set run.dir=back");
  ASSERT_EQ(b.status, 0) << b.out;
  ASSERT_EQ(sh("export --checkpoint back --format gpt2 --out asgpt2-again --windows 1").status, 0);
  EXPECT_EQ(localist::test::run_command("cmp " + dir_->path() + "/asgpt2/model.safetensors " + dir_->path() +
                                        "/asgpt2-again/model.safetensors")
                .status,
            0);
  // No GPT-2 reading: 3 blocks of one head of 8 are 24 units of d_model 32.
  expect_one_line_error(sh("export --checkpoint run --format gpt2 --out nogpt2"), 2,
                        "--format gpt2: the 3 active blocks hold 3 heads of 8 = 24 units, but GPT-2 needs n_head x "
                        "head_dim = n_embd 32; use --format hf");
  expect_one_line_error(sh("export --checkpoint run --pool --format gpt2 --out nogpt2"), 2,
                        "--pool with --format gpt2: GPT-2 holds one LLM");
  EXPECT_FALSE(fs::exists(*dir_ / "nogpt2"));
}

// GPT-2's vocabulary size (50,257 ids, a BPE trained by tokenizers on the bundled corpora
// and the pool demo's German)
// under block parallelism (bp 2): the embedding and the tied head split by vocabulary rows
// (distributed.vocab_parallel: auto turns it on), the losses those of one rank, each rank
// holding about half the parameters, and the checkpoint assembles whole: as GPT-2, its
// logits in transformers are localist's.
TEST_F(Export, AGpt2SizedVocabularySplitsOverTheBlockParallelGroup) {
  const std::string c = localist::test::source_dir() + "/corpora/";
  const CommandResult tok = localist::test::run_command(
      "cd '" + dir_->path() + "' && bash " + localist::test::source_dir() + "/tools/pool_corpora.sh && " +
      localist::test::env_or_empty("LOCALIST_PYTHON") + " " + localist::test::source_dir() +
      "/tools/train_bpe.py tok50k.json 50257 " + c + "wikitext2-valid.txt " + c + "wikitext2-test.txt " + c +
      "tinyshakespeare.txt " + c + "generated/german-train.txt 2>&1");
  ASSERT_EQ(tok.status, 0) << tok.out;
  ASSERT_NE(tok.out.find("50257 ids"), std::string::npos) << tok.out;
  std::string cfg = localist::test::read_text(*dir_ / "c.yaml");
  const std::string shard_line = "  shard_dir: shards\n";
  cfg.replace(cfg.find(shard_line), shard_line.size(),
              "  shard_dir: shards-50k\n  tokenizer: {kind: bpe, model: tok50k.json}\n");
  cfg.replace(cfg.find("  k_initial: 3\n  k_max: 4\n"), 26, "  k_initial: 4\n  k_max: 4\n");
  cfg.replace(cfg.find("  steps: 20\n"), 12, "  steps: 4\n  log_every: 1\n");
  localist::test::write_text(*dir_ / "v50k.yaml", cfg);
  ASSERT_EQ(sh("prepare v50k.yaml").status, 0);
  const CommandResult one = sh("train v50k.yaml --set run.dir=v1");
  ASSERT_EQ(one.status, 0) << one.out;
  const CommandResult two = sh("train v50k.yaml --set run.dir=v2 --set distributed.block_parallel=2",
                               "OMP_NUM_THREADS=1 timeout 300 mpirun -np 2 --oversubscribe ");
  ASSERT_EQ(two.status, 0) << two.out;
  const auto base = localist::test::step_losses(*dir_ / "v1/metrics.jsonl");
  const auto split = localist::test::step_losses(*dir_ / "v2/metrics.jsonl");
  ASSERT_EQ(base.size(), 4u);
  ASSERT_EQ(split.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) EXPECT_NEAR(split[i], base[i], 1e-5 * base[i]) << "step " << i;
  EXPECT_NE(localist::test::read_text(*dir_ / "v2/logs/rank-0.log").find("vocabulary parallel:"), std::string::npos);
  const auto bytes = [&](const std::string& run) {
    return localist::test::event_values(*dir_ / (run + "/metrics.jsonl"), "memory", "parameter_bytes").at(0);
  };
  EXPECT_LT(bytes("v2"), 0.6 * bytes("v1")) << "the 50,257-row embedding is split, not replicated";
  std::printf(
      "vocabulary 50257, bp 2: parameter bytes on rank 0 %.0f (one rank: %.0f); last loss %.6f (one rank %.6f)\n",
      bytes("v2"), bytes("v1"), split.back(), base.back());
  ASSERT_EQ(sh("export --checkpoint v2 --format gpt2 --out v2gpt2 --windows 1").status, 0);
  ASSERT_EQ(sh("export --checkpoint v2 --out v2hf --windows 1").status, 0);
  const auto r = localist::test::export_check(dir_->path(), dir_->path() + "/v2/checkpoints/step-00000004", "main",
                                              "v2hf", "", "--gpt2 v2gpt2", "held.txt");
  EXPECT_EQ(r.status, 0) << r.out;
}

// GPT-2's byte-level BPE (data.tokenizer.kind: bpe): the shards `prepare` writes hold,
// for every bundled corpus, the pool demo's held-out texts and text in many scripts,
// exactly the ids of Hugging Face tokenizers with the same tokenizer.json; the
// vocab.json + merges.txt layout of the same tokenizer gives the same shards.
TEST_F(Export, BpeIdsEqualHuggingFaceTokenizersOnEveryCorpus) {
  const std::string src = localist::test::source_dir();
  const std::string py =
      localist::test::env_or_empty("LOCALIST_PYTHON") + " " + src + "/tests/export/check_bpe_ids.py ";
  auto run = [&](const std::string& cmd) {
    return localist::test::run_command("cd '" + dir_->path() + "' && " + cmd + " 2>&1");
  };
  const CommandResult demo = run("bash " + src + "/tools/pool_corpora.sh");
  ASSERT_EQ(demo.status, 0) << demo.out;
  const CommandResult tr =
      run(py + "train bpe 2000 " + src + "/corpora/tinyshakespeare.txt " + src + "/tests/data/text/scripts.txt");
  ASSERT_EQ(tr.status, 0) << tr.out;
  const std::vector<std::pair<std::string, std::string>> texts = {
      {"shakespeare", src + "/corpora/tinyshakespeare.txt"},
      {"wiki_valid", src + "/corpora/wikitext2-valid.txt"},
      {"wiki_test", src + "/corpora/wikitext2-test.txt"},
      {"german_heldout", src + "/corpora/generated/german-heldout.txt"},
      {"shakespeare_heldout", src + "/corpora/generated/shakespeare-heldout.txt"},
      {"scripts", src + "/tests/data/text/scripts.txt"}};
  for (const std::string model : {"bpe/tokenizer.json", "bpe/files"}) {
    const bool files = model == "bpe/files";  // the other layout: on the two texts with the most scripts
    const std::string shards = files ? "shards-bpe-files" : "shards-bpe";
    std::string sources, pairs;
    for (const auto& [name, path] : texts) {
      if (files && name != "scripts" && name != "german_heldout") continue;
      sources += "    - {name: " + name + ", path: '" + path + "', split: file}\n";
      pairs += " " + name + "=" + path;
    }
    localist::test::write_text(
        *dir_ / "bpe.yaml",
        "data:\n  shard_dir: " + shards + "\n  tokenizer: {kind: bpe, model: " + model + "}\n  sources:\n" + sources);
    const CommandResult p = sh("prepare bpe.yaml");
    ASSERT_EQ(p.status, 0) << p.out;
    const CommandResult c = run(py + "compare bpe/tokenizer.json " + shards + pairs);
    EXPECT_EQ(c.status, 0) << model << "\n" << c.out;
    EXPECT_NE(c.out.find(files ? "ok   2 texts" : "ok   6 texts"), std::string::npos) << c.out;
  }
}
