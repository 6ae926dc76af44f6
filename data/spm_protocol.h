// SPDX-License-Identifier: Apache-2.0
// spm_protocol.h: framing between localist and its SentencePiece helper process
// (localist-spm). A message is one op byte, a little-endian u64 length and the
// payload; replies start with a status byte (0 ok, 1 error + message).
// NOTE(protobuf-clash): Debian's libsentencepiece bundles and exports its own
// protobuf-lite; in a process that also loads LibTorch's libprotobuf.so.32,
// protobuf's start-up code binds to sentencepiece's copies and crashes before
// main(), and a private dlopen scope (RTLD_DEEPBIND) breaks iostreams. So
// SentencePiece runs in a helper process that never loads LibTorch.
#pragma once
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

namespace localist::spm {

enum Op : uint8_t { kLoad = 'L', kEncode = 'E', kDecode = 'D', kTrain = 'T' };

// Full write/read of n bytes on a socket or pipe; false on EOF or error.
inline bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

inline bool read_all(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

inline bool write_frame(int fd, uint8_t tag, const void* payload, uint64_t size) {
  return write_all(fd, &tag, 1) && write_all(fd, &size, 8) && (size == 0 || write_all(fd, payload, size));
}

// The largest payload either side accepts: a longer frame is a broken peer, not a
// request to allocate (a model or a text of a GiB is far past anything real).
constexpr uint64_t kMaxFrameBytes = uint64_t(1) << 30;

inline bool read_frame(int fd, uint8_t& tag, std::string& payload) {
  uint64_t size = 0;
  if (!read_all(fd, &tag, 1) || !read_all(fd, &size, 8) || size > kMaxFrameBytes) return false;
  // Grown as the bytes arrive: a cut frame that claims a GiB costs what it sent, not a GiB.
  payload.clear();
  while (payload.size() < size) {
    const size_t have = payload.size(), chunk = static_cast<size_t>(std::min<uint64_t>(size - have, 1 << 20));
    payload.resize(have + chunk);
    if (!read_all(fd, payload.data() + have, chunk)) return false;
  }
  return true;
}

// The helper's service loop (data/spm_service.cpp): answers requests read from in_fd
// on out_fd until in_fd ends (0) or a reply cannot be written or a frame is malformed
// (1). `allow_train`: whether kTrain requests run (they write the files their options name).
int serve(int in_fd, int out_fd, bool allow_train = true);

}  // namespace localist::spm
