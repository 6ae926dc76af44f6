// SPDX-License-Identifier: Apache-2.0
// spm_helper_main.cpp: localist-spm, the helper process that runs SentencePiece for
// localist (spm_protocol.h says why it is a separate process). Serves requests on
// stdin/stdout until stdin closes. Not meant to be run by hand.
#include <unistd.h>

#include <cstring>

#include "data/spm_protocol.h"

int main(int argc, char** argv) {
  if (argc > 1) {
    const char* msg = "localist-spm: SentencePiece helper of localist; it speaks a binary protocol on stdin/stdout\n";
    (void)!::write(2, msg, std::strlen(msg));  // usage error either way
    return 2;
  }
  return localist::spm::serve(0, 1);
}
