// SPDX-License-Identifier: Apache-2.0
// test_sha256.cpp: SHA-256 against the FIPS 180-4 example vectors and against the
// system's sha256sum on the bundled corpora (an independent implementation).
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/sha256.h"
#include "tests/test_util.h"

using namespace localist;

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data += static_cast<char>(i * 131 % 251);
  for (size_t chunk : {1u, 7u, 63u, 64u, 65u, 1000u}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += chunk) h.update(data.data() + i, std::min(chunk, data.size() - i));
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << "chunk " << chunk;
  }
}

TEST(Sha256, MatchesSha256sumOnCorpora) {
  for (const char* f : {"wikitext2-valid.txt", "tinyshakespeare.txt"}) {
    const std::string path = test::corpus(f);
    auto r = test::run_command("sha256sum '" + path + "'");
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(sha256_file(path), r.out.substr(0, 64)) << f;
  }
}

TEST(Sha256, MissingFileIsAnError) { EXPECT_THROW(sha256_file("/nonexistent/file"), Error); }
