// fuzz_shard.cpp: arbitrary bytes as a token shard (HDF5): its metadata, every token,
// the document offsets, and a read at the end, as training and `inspect` read them.
#include <fstream>

#include "core/error.h"
#include "data/token_shard.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(shard) {
  const std::string path = localist::fuzz::scratch_dir() + "/s.h5";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    localist::ShardReader shard(path);
    const auto all = shard.read_all();
    shard.document_offsets();
    if (!all.empty()) {
      std::vector<uint32_t> last(1);
      shard.read(all.size() - 1, 1, last.data());
    }
  } catch (const localist::Error&) {
  }
  return 0;
}
