// SPDX-License-Identifier: Apache-2.0
// token_shard.cpp: see token_shard.h. HDF5 exceptions never escape: each becomes a
// localist::Error that names the file.
#include "data/token_shard.h"

#include <cstdio>

#include "core/error.h"
#include "core/file_util.h"

namespace localist {
namespace {

const char* kFormatName = "localist-token-shard";

void write_attr(H5::H5Object& obj, const std::string& name, const std::string& value) {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  H5::Attribute a = obj.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  a.write(type, value);
}

void write_attr(H5::H5Object& obj, const std::string& name, int64_t value) {
  H5::Attribute a = obj.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_INT64, &value);
}

std::string read_str(const H5::H5Object& obj, const std::string& name) {
  if (!obj.attrExists(name)) throw Error("missing attribute '" + name + "'");
  H5::Attribute a = obj.openAttribute(name);
  std::string v;
  a.read(a.getStrType(), v);
  return v;
}

int64_t read_int(const H5::H5Object& obj, const std::string& name) {
  if (!obj.attrExists(name)) throw Error("missing attribute '" + name + "'");
  int64_t v = 0;
  obj.openAttribute(name).read(H5::PredType::NATIVE_INT64, &v);
  return v;
}

ShardMeta read_meta(const H5::H5File& f, const std::string& path) {
  ShardMeta m;
  try {
    if (read_str(f, "format") != kFormatName) throw Error("not a localist token shard");
    m.format_version = read_int(f, "format_version");
    if (m.format_version > kShardFormatVersion) {
      throw Error("shard format version " + std::to_string(m.format_version) + " is newer than this build reads (" +
                  std::to_string(kShardFormatVersion) + "); update localist");
    }
    m.source_name = read_str(f, "source_name");
    m.source_path = read_str(f, "source_path");
    m.source_sha256 = read_str(f, "source_sha256");
    m.source_bytes = read_int(f, "source_bytes");
    m.domain = read_str(f, "domain");
    m.tokenizer_kind = read_str(f, "tokenizer_kind");
    m.tokenizer_spec = read_str(f, "tokenizer_spec");
    m.tokenizer_hash = read_str(f, "tokenizer_hash");
    m.vocab_size = read_int(f, "vocab_size");
    m.token_count = read_int(f, "token_count");
    m.document_count = read_int(f, "document_count");
  } catch (const H5::Exception& e) {
    throw Error(path + ": unreadable shard attributes (" + e.getDetailMsg() + ")");
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return m;
}

H5::H5File open_shard(const std::string& path) {
  hdf5_quiet();
  try {
    if (H5::H5File::isHdf5(path.c_str()) <= 0) throw H5::FileIException("", "");
    return H5::H5File(path, H5F_ACC_RDONLY);
  } catch (const H5::Exception&) {
    throw Error(path +
                ": not an HDF5 token shard (missing, truncated or another kind of file); "
                "re-run `localist prepare`");
  }
}

}  // namespace

void hdf5_quiet() { H5::Exception::dontPrint(); }

void shard_write(const std::string& path, const std::vector<uint32_t>& tokens,
                 const std::vector<uint64_t>& document_offsets, const ShardMeta& meta) {
  hdf5_quiet();
  const std::string tmp = temp_sibling(path);
  try {
    H5::H5File f(tmp, H5F_ACC_TRUNC);
    write_attr(f, "format", std::string(kFormatName));
    write_attr(f, "format_version", meta.format_version);
    write_attr(f, "source_name", meta.source_name);
    write_attr(f, "source_path", meta.source_path);
    write_attr(f, "source_sha256", meta.source_sha256);
    write_attr(f, "source_bytes", meta.source_bytes);
    write_attr(f, "domain", meta.domain);
    write_attr(f, "tokenizer_kind", meta.tokenizer_kind);
    write_attr(f, "tokenizer_spec", meta.tokenizer_spec);
    write_attr(f, "tokenizer_hash", meta.tokenizer_hash);
    write_attr(f, "vocab_size", meta.vocab_size);
    write_attr(f, "token_count", static_cast<int64_t>(tokens.size()));
    write_attr(f, "document_count", static_cast<int64_t>(document_offsets.size()) - 1);

    const hsize_t n = tokens.size();
    H5::DataSpace space(1, &n);
    H5::DSetCreatPropList props;
    const hsize_t chunk = std::min<hsize_t>(n, 1 << 20);
    props.setChunk(1, &chunk);
    const bool narrow = meta.vocab_size <= 65536;
    const H5::PredType& file_type = narrow ? H5::PredType::STD_U16LE : H5::PredType::STD_U32LE;
    H5::DataSet ds = f.createDataSet("tokens", file_type, space, props);
    ds.write(tokens.data(), H5::PredType::NATIVE_UINT32);

    const hsize_t nd = document_offsets.size();
    H5::DataSpace dspace(1, &nd);
    f.createDataSet("documents", H5::PredType::STD_U64LE, dspace)
        .write(document_offsets.data(), H5::PredType::NATIVE_UINT64);
    f.close();
  } catch (const H5::Exception& e) {
    std::remove(tmp.c_str());
    throw Error(path + ": writing the shard failed (" + e.getDetailMsg() +
                "); check free space and that the directory is writable");
  }
  commit_temp_file(tmp, path);
}

ShardMeta shard_read_meta(const std::string& path) {
  H5::H5File f = open_shard(path);
  return read_meta(f, path);
}

ShardReader::ShardReader(const std::string& path) : path_(path), file_(open_shard(path)) {
  meta_ = read_meta(file_, path);
  try {
    tokens_ = file_.openDataSet("tokens");
    hsize_t n = 0;
    tokens_.getSpace().getSimpleExtentDims(&n);
    if (static_cast<int64_t>(n) != meta_.token_count) {
      throw Error("/tokens holds " + std::to_string(n) + " tokens but token_count says " +
                  std::to_string(meta_.token_count));
    }
  } catch (const H5::Exception& e) {
    throw Error(path + ": shard has no readable /tokens (" + e.getDetailMsg() + ")");
  } catch (const Error& e) {
    throw Error(path + ": " + e.what() + "; re-run `localist prepare --force`");
  }
}

void ShardReader::read(uint64_t start, uint64_t count, uint32_t* out) const {
  if (start + count > static_cast<uint64_t>(meta_.token_count)) {
    throw Error(path_ + ": read of tokens [" + std::to_string(start) + ", " + std::to_string(start + count) +
                ") is past the end (" + std::to_string(meta_.token_count) + " tokens)");
  }
  if (!cache_.empty()) {
    std::copy(cache_.begin() + start, cache_.begin() + start + count, out);
    return;
  }
  try {
    H5::DataSpace file_space = tokens_.getSpace();
    const hsize_t off = start, cnt = count;
    file_space.selectHyperslab(H5S_SELECT_SET, &cnt, &off);
    H5::DataSpace mem_space(1, &cnt);
    tokens_.read(out, H5::PredType::NATIVE_UINT32, mem_space, file_space);
  } catch (const H5::Exception& e) {
    throw Error(path_ + ": reading tokens failed (" + e.getDetailMsg() + ")");
  }
  check_ids(start, count, out);
}

void ShardReader::check_ids(uint64_t start, uint64_t count, const uint32_t* ids) const {
  // An id past the vocabulary would index past the embedding: a damaged or foreign file.
  for (uint64_t i = 0; i < count; ++i) {
    if (static_cast<int64_t>(ids[i]) >= meta_.vocab_size) {
      throw Error(path_ + ": token " + std::to_string(start + i) + " has id " + std::to_string(ids[i]) +
                  ", outside the vocabulary of " + std::to_string(meta_.vocab_size) +
                  "; the shard is damaged: re-run `localist prepare --force`");
    }
  }
}

std::vector<uint32_t> ShardReader::read_all() const {
  std::vector<uint32_t> out(meta_.token_count);
  if (!out.empty()) read(0, out.size(), out.data());
  return out;
}

void ShardReader::cache_in_memory() {
  if (cache_.empty()) cache_ = read_all();
}

std::vector<uint64_t> ShardReader::document_offsets() const {
  try {
    H5::DataSet ds = file_.openDataSet("documents");
    hsize_t n = 0;
    ds.getSpace().getSimpleExtentDims(&n);
    std::vector<uint64_t> out(n);
    ds.read(out.data(), H5::PredType::NATIVE_UINT64);
    // n + 1 offsets from 0 to the end of /tokens, never decreasing: what every reader of
    // documents relies on (an offset past the end or backwards would read out of bounds).
    bool ok = static_cast<int64_t>(n) == meta_.document_count + 1 && !out.empty() && out.front() == 0 &&
              out.back() == static_cast<uint64_t>(meta_.token_count);
    for (size_t i = 1; ok && i < out.size(); ++i) ok = out[i] >= out[i - 1];
    if (!ok) {
      throw Error(path_ + ": /documents is not " + std::to_string(meta_.document_count + 1) +
                  " non-decreasing offsets from 0 to " + std::to_string(meta_.token_count) +
                  "; the shard is damaged: re-run `localist prepare --force`");
    }
    return out;
  } catch (const H5::Exception& e) {
    throw Error(path_ + ": shard has no readable /documents (" + e.getDetailMsg() + ")");
  }
}

}  // namespace localist
