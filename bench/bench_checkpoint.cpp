// SPDX-License-Identifier: Apache-2.0
// bench_checkpoint.cpp: checkpoint write and read throughput (MB/s) of a model of a few
// hundred MB with its Adam moments, on the ranks mpirun gives it (block parallel over
// all of them, so every rank writes its blocks), plus what an asynchronous checkpoint
// makes the training step wait for against the time of the host copy alone. Reads are
// cold: each file's pages are dropped (posix_fadvise) before it is read.
// tools/bench_checkpoint.sh runs it at 1 and 2 ranks beside dd's sequential write speed.
// Usage: bench_checkpoint OUT_DIR [d_model] [n_layers] [repeats]
#include <ATen/ATen.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_writer.h"
#include "comm/mpi_communicator.h"

using namespace localist;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Drops the page cache of every file under dir (they were fsync'd, so the pages are clean).
void drop_cache(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

int64_t dir_bytes(const fs::path& dir) {
  int64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += static_cast<int64_t>(e.file_size());
  }
  return n;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_checkpoint OUT_DIR [d_model] [n_layers] [repeats]\n");
    return 2;
  }
  const std::string out = argv[1];
  ModelConfig c;
  c.d_model = argc > 2 ? std::atoll(argv[2]) : 1024;
  c.n_layers = argc > 3 ? std::atoll(argv[3]) : 4;
  const int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
  if (c.d_model < 1 || c.n_layers < 1 || repeats < 1) {
    std::fprintf(stderr, "bench_checkpoint: d_model, n_layers and repeats must be positive integers\n");
    return 2;
  }
  c.heads_per_block = 2, c.head_dim = 64, c.k_initial = 8, c.k_max = 8, c.context = 256;
  spdlog::set_level(spdlog::level::warn);
  try {
    auto mpi = mpi_world(launch_env_detect(), 600);
    auto world = mpi.world;
    const int bp = world->size(), rank = world->rank();
    at::manual_seed(1);
    LocalistModel model(c, 258, 1);
    torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(1e-3));
    for (auto& p : model.parameters()) p.mutable_grad() = at::full_like(p, 1e-3);
    opt.step();  // moments exist, as in any checkpoint after step 1
    std::vector<uint8_t> active(c.k_max, 1);
    CheckpointWrite w;
    w.run_dir = out;
    w.world = world;
    LlmWrite llm;
    llm.model = &model;
    llm.optimizer = &opt;
    llm.map = block_map_initial(active, bp);
    llm.bp_rank = rank;
    llm.lead = rank == 0;
    w.llms.push_back(llm);
    w.meta = CheckpointMeta{0, 0, 258, 1, "byte", "bench", "byte"};
    w.config_yaml = "# bench_checkpoint\n";
    w.keep_last = 1;
    const double model_mb = model.parameter_count() * 4 / 1e6;

    std::vector<double> write_s, read_s, wait_ms, copy_ms, bg_ms;
    int64_t bytes = 0, read_bytes = 0;
    for (int r = 0; r < repeats; ++r) {
      // Synchronous write: from the first rank's start to the committed index.
      w.meta.step = 2 * r + 1;
      world->barrier("bench sync");
      auto t0 = Clock::now();
      const std::string dir = checkpoint_save(w);
      write_s.push_back(seconds_since(t0));
      if (rank == 0) bytes = dir_bytes(dir);
      // Cold read and verification, as a resuming rank does (every rank reads every file).
      drop_cache(dir);
      world->barrier("bench read");
      t0 = Clock::now();
      const auto contents = checkpoint_read(dir);
      read_s.push_back(seconds_since(t0));
      read_bytes = 0;
      for (const auto& [name, info] : contents.files.items()) read_bytes += info.at("bytes").get<int64_t>();
      // Asynchronous: what training waits for; training goes on (sleeps here) until committed.
      w.meta.step = 2 * r + 2;
      CheckpointWriter writer(true);
      world->barrier("bench async");
      t0 = Clock::now();
      writer.start(w);
      wait_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      copy_ms.push_back(writer.last_copy_ms());
      while (!writer.local_done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      writer.finish();
      bg_ms.push_back(writer.last_write_ms());
    }
    // Rank-local numbers, worst rank first: the slowest rank sets the step's wait.
    auto worst = [&](double v) {
      auto t = at::tensor({v}, at::kDouble);
      world->all_reduce(t, ReduceOp::kMax, "bench max");
      return t.item<double>();
    };
    const double ws = median(write_s), rs = worst(median(read_s));
    const double wait = worst(median(wait_ms)), copy = worst(median(copy_ms)), bg = worst(median(bg_ms));
    if (rank == 0) {
      std::printf("ranks %d: model %.0f MB, checkpoint %.0f MB (with Adam moments), median of %d\n", bp, model_mb,
                  bytes / 1e6, repeats);
      std::printf("  write (synchronous, all ranks, to commit): %.2f s = %.0f MB/s\n", ws, bytes / 1e6 / ws);
      std::printf("  read + SHA-256 verify (cold, slowest rank reads all %.0f MB): %.2f s = %.0f MB/s\n",
                  read_bytes / 1e6, rs, read_bytes / 1e6 / rs);
      std::printf(
          "  asynchronous: training waits %.0f ms (host copy alone %.0f ms, sync write %.0f ms); "
          "files on disk after %.0f ms\n",
          wait, copy, ws * 1e3, bg);
    }
    world->barrier("bench end");
    mpi_finalize();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
    return 1;
  }
  return 0;
}
