// SPDX-License-Identifier: Apache-2.0
// fuzz_spm.cpp: the SentencePiece helper's protocol (data/spm_protocol.h): arbitrary
// bytes as the request stream of localist-spm, served to the end. Train requests are
// left out (they write the files their options name); load, encode and decode run.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "data/spm_protocol.h"
#include "tests/fuzz/fuzz_target.h"

LOCALIST_FUZZ_TARGET(spm) {
  const std::string path = localist::fuzz::scratch_dir() + "/requests";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  const int in = ::open(path.c_str(), O_RDONLY);
  const int out = ::open("/dev/null", O_WRONLY);
  if (in >= 0 && out >= 0) localist::spm::serve(in, out, /*allow_train=*/false);
  if (in >= 0) ::close(in);
  if (out >= 0) ::close(out);
  return 0;
}
