// SPDX-License-Identifier: Apache-2.0
// sha256.h: SHA-256 (FIPS 180-4) for source checksums, tokenizer hashes and checkpoint
// file checksums, computed by OpenSSL's libcrypto (SHA-NI/AVX2 where the CPU has them:
// ~1.3 GB/s on the dev machine against ~0.3 GB/s for a portable C++ loop; checkpoint
// writes and resumes hash every byte). Streaming.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace localist {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finalises; call once
  std::string hex_digest();          // finalises; lowercase hex

 private:
  void* ctx_;  // EVP_MD_CTX*, kept out of this header
};

std::string sha256_hex(const std::string& data);
// Hashes a file's bytes; throws localist::Error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace localist
