// SPDX-License-Identifier: Apache-2.0
// test_safetensors.cpp: checkpoint/safetensors against the format's definition: the bytes of
// a small file built by hand from the specification (length, JSON header padded to 8,
// raw little-endian data), a round trip of every supported dtype and of odd shapes, and
// damaged files refused with a message naming the file.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "checkpoint/safetensors.h"
#include "core/error.h"
#include "tests/test_util.h"

using localist::Error;
using localist::safetensors_read;
using localist::safetensors_write;
using localist::test::TempDir;

namespace {

std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A file from its parts, as the specification lays it out.
std::string file_of(std::string header, const std::string& data) { return le64(header.size()) + header + data; }

void expect_refused(const std::string& path, const std::string& bytes, const std::string& needle) {
  localist::test::write_text(path, bytes);
  try {
    safetensors_read(path);
    ADD_FAILURE() << "accepted: " << needle;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  }
}

}  // namespace

TEST(Safetensors, BytesAreTheFormatsDefinition) {
  TempDir dir;
  const float a[2] = {1.0f, -2.5f};
  safetensors_write(dir / "a.safetensors", {{"a", at::tensor(std::vector<float>{1.0f, -2.5f})}});
  std::string header = R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data(reinterpret_cast<const char*>(a), sizeof(a));
  EXPECT_EQ(localist::test::read_text(dir / "a.safetensors"), file_of(header, data));
}

TEST(Safetensors, EveryDtypeAndShapeRoundTrips) {
  TempDir dir;
  auto gen = at::detail::createCPUGenerator(3);
  const auto f = at::empty({3, 5}, at::kFloat).normal_(0, 1, gen);
  std::vector<std::pair<std::string, at::Tensor>> in = {{"f64", f.to(at::kDouble) * 1e300},
                                                        {"f32", f},
                                                        {"bf16", f.to(at::kBFloat16)},
                                                        {"f16", f.to(at::kHalf)},
                                                        {"i64", at::arange(-5, 5, at::kLong)},
                                                        {"i32", at::arange(7, at::kInt)},
                                                        {"u8", at::arange(256, at::kLong).to(at::kByte)},
                                                        {"bool", f.gt(0)},
                                                        {"scalar", at::tensor(3.25)},
                                                        {"empty", at::empty({0, 4}, at::kFloat)},
                                                        {"strided", f.t()},  // not contiguous
                                                        {"layer.0/x y", f.narrow(1, 1, 2)}};
  safetensors_write(dir / "t.safetensors", in, {{"format", "pt"}, {"note", "é"}});
  const auto r = safetensors_read(dir / "t.safetensors");
  ASSERT_EQ(r.tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    const auto& got = r.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(got, t.contiguous())) << name;
  }
  EXPECT_EQ(r.metadata.at("note"), "é");
  const std::string bytes = localist::test::read_text(dir / "t.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "the data starts 8-byte aligned";
  EXPECT_THROW(safetensors_write(dir / "d.safetensors", {{"a", f}, {"a", f}}), Error);
  EXPECT_THROW(safetensors_write(dir / "c.safetensors", {{"c", f.to(at::kComplexFloat)}}), Error);
}

TEST(Safetensors, DamagedFilesAreRefusedNamingTheFile) {
  TempDir dir;
  const std::string p = dir / "bad.safetensors";
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data(8, '\0');
  expect_refused(p, "abc", "shorter than");
  expect_refused(p, le64(1000) + good, "header length 1000");
  expect_refused(p, file_of("{not json}", data), "not JSON");
  expect_refused(p, file_of(good, data.substr(0, 4)), "outside the file");
  expect_refused(p, file_of(good, data + "xx"), "2 bytes after the last tensor");
  expect_refused(p, file_of(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", data), "Q7");
  expect_refused(p, file_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data), "does not match");
  expect_refused(p,
                 file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         data),
                 "overlap");
  expect_refused(p, file_of(R"({"a":{"dtype":"F32","shape":[2]}})", data), "malformed");
  // Numbers that are not integers (found by fuzzing: 1E52 as an offset was undefined behaviour).
  expect_refused(p, file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1E52]}})", data),
                 "data_offsets holds 1e+52, not an integer");
  expect_refused(p, file_of(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data),
                 "shape holds 2.5, not an integer");
  expect_refused(p, file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,8]}})", data), "negative offset");
  expect_refused(p, file_of(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data), "shape is not a list");
  expect_refused(dir / "missing.safetensors", "", "");  // written empty: too short
}
