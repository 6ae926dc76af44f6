// SPDX-License-Identifier: Apache-2.0
// tensor_file.cpp: see tensor_file.h. HDF5 exceptions never escape: each becomes a
// localist::Error naming the file.
#include "checkpoint/tensor_file.h"

#include <ATen/ATen.h>
#include <H5Cpp.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <utility>

#include "core/check.h"
#include "core/error.h"
#include "core/file_util.h"

namespace localist {
namespace {

bool g_locking = false;

H5::FileAccPropList access_props() {
  H5::FileAccPropList fapl;
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(fapl.getId(), g_locking ? 1 : 0, 1);
#endif
  return fapl;
}

const H5::PredType& file_type(at::ScalarType t, const std::string& name) {
  switch (t) {
    case at::kFloat:
      return H5::PredType::IEEE_F32LE;
    case at::kDouble:
      return H5::PredType::IEEE_F64LE;
    case at::kLong:
      return H5::PredType::STD_I64LE;
    case at::kByte:
      return H5::PredType::STD_U8LE;
    default:
      LOCALIST_CHECK(false, "tensor '", name, "': ", at::toString(t), " cannot be stored");
  }
}

const H5::PredType& mem_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return H5::PredType::NATIVE_FLOAT;
    case at::kDouble:
      return H5::PredType::NATIVE_DOUBLE;
    case at::kLong:
      return H5::PredType::NATIVE_INT64;
    default:
      return H5::PredType::NATIVE_UINT8;
  }
}

at::ScalarType scalar_type_of(const H5::DataSet& ds, const std::string& name) {
  const H5T_class_t cls = ds.getTypeClass();
  const size_t size = ds.getDataType().getSize();
  if (cls == H5T_FLOAT && size == 4) return at::kFloat;
  if (cls == H5T_FLOAT && size == 8) return at::kDouble;
  if (cls == H5T_INTEGER && size == 8) return at::kLong;
  if (cls == H5T_INTEGER && size == 1) return at::kByte;
  throw Error("dataset '" + name + "' has a type this build does not read");
}

}  // namespace

void tensor_file_set_locking(bool enabled) { g_locking = enabled; }

void tensor_file_write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const TensorFileAttrs& attrs) {
  H5::Exception::dontPrint();
  const std::string tmp = temp_sibling(path);
  try {
    {
      H5::H5File f(tmp, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, access_props());
      H5::LinkCreatPropList lcpl;
      H5Pset_create_intermediate_group(lcpl.getId(), 1);
      for (const auto& [name, t_in] : tensors) {
        auto t = t_in.detach().to(at::kCPU).contiguous();
        if (t.scalar_type() == at::kBool) t = t.to(at::kByte);  // HDF5 has no bool; 0/1 bytes
        std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
        H5::DataSpace space =
            dims.empty() ? H5::DataSpace(H5S_SCALAR) : H5::DataSpace(static_cast<int>(dims.size()), dims.data());
        H5::DataSet ds = f.createDataSet(name, file_type(t.scalar_type(), name), space, H5::DSetCreatPropList::DEFAULT,
                                         H5::DSetAccPropList::DEFAULT, lcpl);
        if (t.numel() > 0) ds.write(t.data_ptr(), mem_type(t.scalar_type()));
      }
      H5::StrType str(H5::PredType::C_S1, H5T_VARIABLE);
      for (const auto& [k, v] : attrs) f.createAttribute(k, str, H5::DataSpace(H5S_SCALAR)).write(str, v);
    }
    commit_temp_file(tmp, path);
  } catch (const H5::Exception& e) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write checkpoint file (" + e.getDetailMsg() + "); check free space and permissions");
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

namespace {

// The writer stores every element (contiguous, uncompressed): a dataset whose shape
// claims more bytes than the file holds for it is damaged or foreign, and is refused
// before anything is allocated for it.
void check_stored(const H5::DataSet& ds, const std::string& name, const std::vector<hsize_t>& dims,
                  at::ScalarType type) {
  double bytes = static_cast<double>(at::elementSize(type)), extent = 1;
  for (hsize_t d : dims) {
    bytes *= static_cast<double>(d);
    extent *= static_cast<double>(std::max<hsize_t>(d, 1));
  }
  // Even with no element, a shape whose sizes multiply past 2^62 cannot be allocated.
  if (extent > 4.6e18) throw Error("dataset '" + name + "' has an impossible shape (a damaged file)");
  const double stored = static_cast<double>(ds.getStorageSize());
  if (bytes > stored) {
    throw Error("dataset '" + name + "' claims " + std::to_string(static_cast<long double>(bytes)) +
                " bytes but the file stores " + std::to_string(ds.getStorageSize()) + " for it (a damaged file)");
  }
}

at::Tensor read_dataset(const H5::DataSet& ds, const std::string& name) {
  H5::DataSpace space = ds.getSpace();
  std::vector<hsize_t> dims(space.getSimpleExtentNdims());
  if (!dims.empty()) space.getSimpleExtentDims(dims.data());
  const auto type = scalar_type_of(ds, name);
  check_stored(ds, name, dims, type);
  auto t = at::empty(std::vector<int64_t>(dims.begin(), dims.end()), at::TensorOptions().dtype(type));
  if (t.numel() > 0) ds.read(t.data_ptr(), mem_type(type));
  return t;
}

// HDF5 and our errors of `body` on file `path` as one Error naming it.
template <typename F>
auto naming_file(const std::string& path, F&& body) {
  H5::Exception::dontPrint();
  try {
    return body();
  } catch (const H5::Exception& e) {
    throw Error(path + ": unreadable checkpoint file (" + e.getDetailMsg() + ")");
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
}

H5::H5File open_for_reading(const std::string& path) {
  if (H5::H5File::isHdf5(path.c_str()) <= 0) throw Error("not an HDF5 file (missing or truncated)");
  return H5::H5File(path, H5F_ACC_RDONLY, H5::FileCreatPropList::DEFAULT, access_props());
}

// Opens `path` and runs `body` on it; HDF5 and our errors name the file.
template <typename F>
void with_file(const std::string& path, F&& body) {
  naming_file(path, [&] {
    const H5::H5File f = open_for_reading(path);
    body(f);
  });
}

// Every dataset's path (without the leading '/'), with `each` called on it.
void walk_datasets(const H5::H5File& f,
                   const std::function<void(const H5::Group&, const std::string&, const std::string&)>& each) {
  std::function<void(const H5::Group&, const std::string&)> walk = [&](const H5::Group& g, const std::string& prefix) {
    for (hsize_t i = 0; i < g.getNumObjs(); ++i) {
      const std::string name = g.getObjnameByIdx(i);
      const std::string full = prefix.empty() ? name : prefix + "/" + name;
      const H5G_obj_t kind = g.getObjTypeByIdx(i);
      if (kind == H5G_GROUP) {
        walk(g.openGroup(name), full);
      } else if (kind == H5G_DATASET) {
        each(g, name, full);
      }
    }
  };
  walk(f.openGroup("/"), "");
}

}  // namespace

TensorFileContents tensor_file_read(const std::string& path) {
  TensorFileContents out;
  with_file(path, [&](const H5::H5File& f) {
    walk_datasets(f, [&](const H5::Group& g, const std::string& name, const std::string& full) {
      out.tensors[full] = read_dataset(g.openDataSet(name), full);
    });
    for (int i = 0; i < f.getNumAttrs(); ++i) {
      H5::Attribute a = f.openAttribute(static_cast<unsigned>(i));
      std::string v;
      a.read(a.getStrType(), v);
      out.attrs[a.getName()] = v;
    }
  });
  return out;
}

std::vector<std::string> tensor_file_names(const std::string& path) {
  std::vector<std::string> out;
  with_file(path, [&](const H5::H5File& f) {
    walk_datasets(f, [&](const H5::Group&, const std::string&, const std::string& full) { out.push_back(full); });
  });
  return out;
}

namespace {

// Rows [begin, begin + size) along dim of an open dataset (see tensor_file_read_part).
at::Tensor read_rows(const H5::DataSet& ds, const std::string& name, int64_t dim, int64_t begin, int64_t size,
                     int64_t whole) {
  H5::DataSpace space = ds.getSpace();
  const int rank = space.getSimpleExtentNdims();
  std::vector<hsize_t> dims(rank);
  if (rank > 0) space.getSimpleExtentDims(dims.data());
  if (dim < 0 || dim >= rank || static_cast<int64_t>(dims[dim]) != whole || begin < 0 || size < 0 ||
      begin > whole - size) {
    throw Error("'" + name + "' does not have " + std::to_string(whole) + " rows along dimension " +
                std::to_string(dim) + " (a changed model shape cannot resume)");
  }
  std::vector<hsize_t> offset(rank, 0), count(dims);
  offset[dim] = static_cast<hsize_t>(begin);
  count[dim] = static_cast<hsize_t>(size);
  space.selectHyperslab(H5S_SELECT_SET, count.data(), offset.data());
  H5::DataSpace mem(rank, count.data());
  const auto type = scalar_type_of(ds, name);
  check_stored(ds, name, dims, type);
  auto t = at::empty(std::vector<int64_t>(count.begin(), count.end()), at::TensorOptions().dtype(type));
  if (t.numel() > 0) ds.read(t.data_ptr(), mem_type(type), mem, space);
  return t;
}

}  // namespace

struct TensorFileReader::Open {
  H5::H5File file;
};

TensorFileReader::TensorFileReader(std::string path) : path_(std::move(path)) {
  open_ = naming_file(path_, [&] { return std::make_unique<Open>(Open{open_for_reading(path_)}); });
}

TensorFileReader::~TensorFileReader() = default;

at::Tensor TensorFileReader::read(const std::string& name) const {
  return naming_file(path_, [&] { return read_dataset(open_->file.openDataSet(name), name); });
}

at::Tensor TensorFileReader::read_part(const std::string& name, int64_t dim, int64_t begin, int64_t size,
                                       int64_t whole) const {
  return naming_file(path_, [&] { return read_rows(open_->file.openDataSet(name), name, dim, begin, size, whole); });
}

at::Tensor tensor_file_read_part(const std::string& path, const std::string& name, int64_t dim, int64_t begin,
                                 int64_t size, int64_t whole) {
  return TensorFileReader(path).read_part(name, dim, begin, size, whole);
}

at::Tensor tensor_file_read_one(const std::string& path, const std::string& name) {
  return TensorFileReader(path).read(name);
}

}  // namespace localist
