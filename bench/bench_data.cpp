// SPDX-License-Identifier: Apache-2.0
// bench_data.cpp: data-pipeline throughput on the bundled corpora: `prepare` with the
// byte tokenizer (MB/s), and BatchReader rows/s reading windows from HDF5 (cache off)
// and from the in-memory shard cache (the default for shards that fit), in one
// invocation. Usage: bench_data [steps] (run from the repository root).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "data/batch_reader.h"
#include "data/prepare.h"

using namespace localist;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int main(int argc, char** argv) {
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 200;
  hdf5_quiet();
  const std::string dir = (std::filesystem::temp_directory_path() / "localist-bench-data").string();
  std::filesystem::remove_all(dir);
  DataConfig data;
  data.shard_dir = dir;
  data.sources.push_back({"wiki", "corpora/wikitext2-valid.txt", "encyclopedia", "wikitext", 1.0, 0, true});
  data.sources.push_back({"drama", "corpora/tinyshakespeare.txt", "drama", "blank_line", 1.0, 0, true});

  auto t0 = Clock::now();
  const auto shards = prepare_shards(data, true, nullptr);
  const double prep_s = since(t0);
  double mb = 0;
  for (const auto& s : shards) mb += s.meta.source_bytes / 1e6;
  std::printf("prepare (byte): %.1f MB in %.3f s = %.1f MB/s\n", mb, prep_s, mb / prep_s);

  const int64_t batch = 32, context = 256;
  const BatchReader from_hdf5(data, context, 1234, batch, /*cache_bytes=*/0);
  const BatchReader cached(data, context, 1234, batch);

  t0 = Clock::now();
  uint64_t checksum = 0;
  for (int64_t step = 0; step < steps; ++step) checksum += from_hdf5.read(step, 0, 1).tokens[5];
  const double hdf5_s = since(t0);

  t0 = Clock::now();
  uint64_t checksum2 = 0;
  for (int64_t step = 0; step < steps; ++step) checksum2 += cached.read(step, 0, 1).tokens[5];
  const double mem_s = since(t0);
  const double rows = double(steps * batch);
  std::printf("batches (%lld steps x %lld rows x %lld tokens): HDF5 %.0f rows/s, cached %.0f rows/s, ratio %.1fx%s\n",
              (long long)steps, (long long)batch, (long long)context + 1, rows / hdf5_s, rows / mem_s, hdf5_s / mem_s,
              checksum == checksum2 ? "" : "  (MISMATCH)");
  std::filesystem::remove_all(dir);
  return checksum == checksum2 ? 0 : 1;
}
