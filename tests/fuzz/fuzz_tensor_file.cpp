// SPDX-License-Identifier: Apache-2.0
// fuzz_tensor_file.cpp: the checkpoint file reader (checkpoint/tensor_file.h) on valid HDF5
// files of arbitrary content: the input, split at 0xFF bytes, gives datasets (a type from
// float32/64, int64, uint8 and types the reader must refuse, a rank of 0 to 3, sizes, a
// size of 2^40 declared over a chunked layout that stores nothing, a name) and string
// attributes; the file is read whole, by name and by parts as a resume reads it.
// Arbitrary bytes as HDF5 are libhdf5's parser, not ours (docs/robustness.md).
#include <ATen/ATen.h>
#include <H5Cpp.h>

#include <string>
#include <vector>

#include "checkpoint/tensor_file.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(tensor_file) {
  std::vector<std::string> f = localist::fuzz::split_fields(data, size, 1);
  const std::string path = localist::fuzz::scratch_dir() + "/f.h5";
  H5::Exception::dontPrint();
  try {
    H5::H5File file(path, H5F_ACC_TRUNC);
    H5::LinkCreatPropList lcpl;
    H5Pset_create_intermediate_group(lcpl.getId(), 1);
    const H5::PredType* types[] = {&H5::PredType::IEEE_F32LE, &H5::PredType::IEEE_F64LE, &H5::PredType::STD_I64LE,
                                   &H5::PredType::STD_U8LE,   &H5::PredType::STD_I16LE,  &H5::PredType::STD_U32BE};
    for (size_t k = 0; k + 1 < f.size() && k < 8; ++k) {
      const std::string& d = f[k];
      if (d.size() < 2) continue;
      const auto& type = *types[static_cast<uint8_t>(d[0]) % 6];
      const int rank = static_cast<uint8_t>(d[1]) % 4;
      std::vector<hsize_t> dims;
      bool huge = false;
      for (int r = 0; r < rank; ++r) {
        const uint8_t b = d.size() > size_t(2 + r) ? static_cast<uint8_t>(d[2 + r]) : 1;
        huge = huge || b == 0xFE;
        dims.push_back(b == 0xFE ? (hsize_t(1) << 40) : b % 9);
      }
      std::string name = d.size() > size_t(2 + rank) ? d.substr(2 + rank) : "d";
      for (char& c : name) {
        if (c == '\0' || c == '.') c = '_';
      }
      if (name.empty() || name.front() == '/' || name.back() == '/') name = "d" + std::to_string(k);
      H5::DataSpace space = dims.empty() ? H5::DataSpace(H5S_SCALAR) : H5::DataSpace(rank, dims.data());
      H5::DSetCreatPropList props;
      if (huge) {
        std::vector<hsize_t> chunk(rank, 1);
        props.setChunk(rank, chunk.data());
      }
      H5::DataSet ds = file.createDataSet(name, type, space, props, H5::DSetAccPropList::DEFAULT, lcpl);
      hsize_t n = 1;
      for (hsize_t x : dims) n *= x;
      if (!huge && n > 0) {
        std::vector<double> values(n);
        for (hsize_t i = 0; i < n; ++i) values[i] = static_cast<double>(static_cast<int8_t>(d[i % d.size()]));
        ds.write(values.data(), H5::PredType::NATIVE_DOUBLE);
      }
    }
    H5::StrType str(H5::PredType::C_S1, H5T_VARIABLE);
    const std::string& a = f.back();
    file.createAttribute(a.empty() ? std::string("a") : a.substr(0, 8), str, H5::DataSpace(H5S_SCALAR)).write(str, a);
  } catch (const H5::Exception&) {
    return 0;  // a name or layout HDF5 itself refuses to write: not an input for the reader
  }
  try {
    localist::tensor_file_read(path);
  } catch (const localist::Error&) {
  }
  try {
    localist::TensorFileReader reader(path);
    for (const auto& name : localist::tensor_file_names(path)) {
      try {
        const auto t = reader.read(name);
        const int64_t rows = t.dim() > 0 ? t.size(0) : 0;
        reader.read_part(name, 0, rows / 2, rows - rows / 2, rows);
        reader.read_part(name, static_cast<int64_t>(size % 5) - 1, -1, 2, rows);
      } catch (const localist::Error&) {
      }
    }
  } catch (const localist::Error&) {
  }
  return 0;
}
