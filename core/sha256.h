// sha256.h: SHA-256 (FIPS 180-4) for source checksums, tokenizer hashes and, later,
// checkpoint file checksums. Streaming; about 200-400 MB/s, enough for corpora here.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace localist {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finalises; call once
  std::string hex_digest();          // finalises; lowercase hex

 private:
  void compress(const uint8_t* block);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const std::string& data);
// Hashes a file's bytes; throws localist::Error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace localist
