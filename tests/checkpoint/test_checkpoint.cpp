// SPDX-License-Identifier: Apache-2.0
// test_checkpoint.cpp: an asynchronous checkpoint holds the state of the step it was
// started at, bit for bit against a synchronous one; a rank reading part of a tensor
// reads only those rows (an HDF5 hyperslab).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_schema.h"
#include "checkpoint/checkpoint_writer.h"
#include "checkpoint/tensor_file.h"
#include "tests/test_util.h"

using namespace localist;

// The training step goes on while an asynchronous checkpoint is written: the files must
// hold the state at start(), equal bit for bit to a synchronous checkpoint of that state,
// however much the parameters and moments change before finish().
TEST(Checkpoint, AsynchronousWriteHoldsTheStateAtItsStart) {
  ModelConfig mc;
  mc.d_model = 32;
  mc.head_dim = 8;
  mc.context = 16;
  LocalistModel model(mc, 50, 3);
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-3));
  ForwardOptions fo;
  fo.dial = {0.5, 0.5};
  auto x = at::randint(50, {2, 16}, at::kLong);
  model.forward(x, fo).logits.pow(2).mean().backward();
  opt.step();

  test::TempDir root;
  std::vector<uint8_t> active(mc.k_max, 0);
  for (int64_t s : model.active_slots()) active[s] = 1;
  CheckpointWrite w;
  w.world = local_communicator();
  LlmWrite llm;
  llm.model = &model;
  llm.optimizer = &opt;
  llm.map = block_map_initial(active, 1);
  llm.lead = true;
  w.llms.push_back(llm);
  w.meta = CheckpointMeta{5, 100, 50, 3, "byte", "h", "byte", ""};
  w.config_yaml = "model: {}\n";
  w.run_dir = root / "sync";
  const std::string sync_dir = checkpoint_save(w);
  const auto sync = checkpoint_read(sync_dir);
  // The index lists the rank file's tensors: reading the checkpoint opens no rank file,
  // and the names are the file's. An index without the list (an older checkpoint) has the
  // reader list the file itself.
  EXPECT_TRUE(sync.open_files.empty());
  const std::string rank_file = sync_dir + "/rank-00000.h5";
  auto in_file = tensor_file_names(rank_file);
  std::sort(in_file.begin(), in_file.end());
  EXPECT_EQ(sync.names(), in_file);
  {
    test::TempDir older;
    std::filesystem::copy(sync_dir, older.path(), std::filesystem::copy_options::recursive);
    auto index = tensor_file_read(older / "index.h5");
    ASSERT_EQ(index.tensors.erase("tensor_names/rank-00000.h5"), 1u);
    const std::vector<std::pair<std::string, at::Tensor>> kept(index.tensors.begin(), index.tensors.end());
    index.attrs["index_sha256"] = checkpoint_index_digest(index.attrs, kept);
    tensor_file_write(older / "index.h5", kept, index.attrs);
    EXPECT_EQ(checkpoint_read(older.path()).names(), in_file);
  }

  w.run_dir = root / "async";
  CheckpointWriter writer(true);
  writer.start(w);
  EXPECT_TRUE(writer.pending());
  {
    at::NoGradGuard no_grad;
    for (auto& p : model.parameters()) p.add_(1.0);  // the next training step, meanwhile
  }
  model.forward(x, fo).logits.pow(2).mean().backward();
  opt.step();
  const std::string dir = writer.finish();
  EXPECT_FALSE(writer.pending());
  const auto async = checkpoint_read(dir);
  ASSERT_EQ(async.names(), sync.names());
  ASSERT_FALSE(sync.names().empty());
  for (const auto& name : sync.names()) EXPECT_TRUE(at::equal(async.get(name), sync.get(name))) << name;
  ASSERT_TRUE(async.rng_cpu.defined());
  EXPECT_EQ(async.rng_cpu.size(0), 1);
  EXPECT_TRUE(at::equal(async.rng_cpu, sync.rng_cpu));
}

// A rank reading its part of a checkpoint tensor reads only those rows (an HDF5
// hyperslab), equal to the rows of the whole; a tensor of another size is named.
TEST(Checkpoint, APartReadReadsOnlyItsRows) {
  test::TempDir dir;
  const std::string path = dir / "rank-00000.h5";
  const auto a = at::arange(60, at::kFloat).view({10, 6}), b = at::arange(24, at::kDouble).view({2, 3, 4});
  tensor_file_write(path, {{"model/main/shared/wte", a}, {"x/y", b}});
  EXPECT_TRUE(at::equal(tensor_file_read_part(path, "model/main/shared/wte", 0, 3, 4, 10), a.narrow(0, 3, 4)));
  EXPECT_TRUE(at::equal(tensor_file_read_part(path, "x/y", 2, 1, 2, 4), b.narrow(2, 1, 2)));
  EXPECT_TRUE(at::equal(tensor_file_read_one(path, "x/y"), b));
  try {
    tensor_file_read_part(path, "model/main/shared/wte", 0, 0, 4, 12);
    FAIL() << "a 10-row tensor read as 12 rows";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not have 12 rows along dimension 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  CheckpointContents c;
  c.dir = dir.path();
  for (const auto& n : tensor_file_names(path)) c.located[n] = path;
  EXPECT_EQ(c.names(), (std::vector<std::string>{"model/main/shared/wte", "x/y"}));
  EXPECT_EQ(c.bytes_read, 0);  // names only, so far
  EXPECT_TRUE(at::equal(c.get_part("model/main/shared/wte", 1, 2, 3, 6), a.narrow(1, 2, 3)));
  EXPECT_EQ(c.bytes_read, 10 * 3 * 4);
  EXPECT_THROW(c.get("model/main/shared/missing"), Error);
}
