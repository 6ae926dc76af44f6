// fuzz_tensor_file.cpp: arbitrary bytes as a checkpoint file (HDF5): read whole, by
// name, by part, as the resume reads a rank file whose checksum another rank checked.
#include <ATen/ATen.h>

#include <fstream>

#include "core/error.h"
#include "tests/fuzz/fuzz_target.h"
#include "trainer/tensor_file.h"

LOCALIST_FUZZ_TARGET(tensor_file) {
  const std::string path = localist::fuzz::scratch_dir() + "/f.h5";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto contents = localist::tensor_file_read(path);
    for (const auto& name : localist::tensor_file_names(path)) {
      localist::TensorFileReader reader(path);
      const auto t = reader.read(name);
      if (t.dim() > 0 && t.size(0) > 1) reader.read_part(name, 0, 1, t.size(0) - 1, t.size(0));
    }
  } catch (const localist::Error&) {
  }
  return 0;
}
