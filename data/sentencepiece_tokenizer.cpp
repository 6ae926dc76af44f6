// SPDX-License-Identifier: Apache-2.0
// sentencepiece_tokenizer.cpp: see sentencepiece_tokenizer.h. Talks to one
// localist-spm helper process per tokenizer over a socket pair.
#include "data/sentencepiece_tokenizer.h"

#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "core/sha256.h"
#include "data/spm_protocol.h"

extern char** environ;

namespace localist {

namespace {

std::string find_helper() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("LOCALIST_SPM_HELPER")) candidates.push_back(env);
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    // A build tree keeps it beside the binary; an installation in libexec/localist.
    const auto bin = std::filesystem::path(exe).parent_path();
    candidates.push_back((bin / "localist-spm").string());
    candidates.push_back((bin.parent_path() / "libexec" / "localist" / "localist-spm").string());
  }
  candidates.push_back(LOCALIST_SPM_HELPER_BUILD_PATH);
  std::string tried;
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
    tried += (tried.empty() ? "" : ", ") + c;
  }
  throw Error("SentencePiece helper localist-spm not found (tried " + tried +
              "); rebuild localist or set LOCALIST_SPM_HELPER to its path");
}

}  // namespace

class SentencePieceTokenizer::Helper {
 public:
  Helper() {
    const std::string path = find_helper();
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      throw Error(std::string("cannot create a socket for the SentencePiece helper: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
    posix_spawn_file_actions_adddup2(&actions, sv[1], 1);
    char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
    const int rc = ::posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(sv[1]);
    if (rc != 0) {
      ::close(sv[0]);
      throw Error(path + ": cannot start the SentencePiece helper: " + std::strerror(rc));
    }
    fd_ = sv[0];
  }

  ~Helper() {
    ::close(fd_);  // EOF on its stdin: the helper exits
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  // Sends one request; returns the reply payload or throws with the helper's message.
  std::string call(spm::Op op, const void* data, size_t size, const std::string& what) {
    uint8_t status = 1;
    std::string reply;
    if (!spm::write_frame(fd_, op, data, size) || !spm::read_frame(fd_, status, reply)) {
      throw Error("sentencepiece " + what + ": the helper process localist-spm died (out of memory?)");
    }
    if (status != 0) throw Error("sentencepiece " + what + " failed: " + reply);
    return reply;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& model_path) {
  const std::string bytes = read_file(model_path);
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->helper_ = std::make_unique<Helper>();
  std::string info;
  try {
    info = t->helper_->call(spm::kLoad, bytes.data(), bytes.size(), "load");
  } catch (const Error& e) {
    throw Error(model_path + ": not a usable SentencePiece model (" + e.what() + ")");
  }
  int32_t v[3];
  std::memcpy(v, info.data(), sizeof v);
  if (v[1] < 0 || v[2] < 0) {
    throw Error(model_path +
                ": the SentencePiece model needs bos and pad ids (localist uses them for "
                "document boundaries and padding); retrain with --bos_id and --pad_id set");
  }
  t->vocab_size_ = static_cast<uint32_t>(v[0]);
  t->document_id_ = static_cast<uint32_t>(v[1]);
  t->pad_id_ = static_cast<uint32_t>(v[2]);
  t->hash_ = sha256_hex(info.substr(sizeof v));  // the mapping, not the file bytes
  t->model_path_ = model_path;
  return t;
}

void SentencePieceTokenizer::train(const std::vector<std::string>& files, int64_t vocab_size,
                                   const std::string& model_type, const std::string& model_path) {
  if (files.empty()) throw Error("sentencepiece: no training files given");
  std::string inputs;
  for (const auto& f : files) {
    if (f.find_first_of(", ") != std::string::npos) {
      throw Error(f + ": SentencePiece cannot train on a path with a comma or space; rename the file");
    }
    inputs += (inputs.empty() ? "" : ",") + f;
  }
  const std::string tmp_prefix = temp_sibling(model_path);
  const std::string args = "--input=" + inputs + " --model_prefix=" + tmp_prefix +
                           " --vocab_size=" + std::to_string(vocab_size) + " --model_type=" + model_type +
                           " --character_coverage=1.0 --byte_fallback=true --normalization_rule_name=identity"
                           " --add_dummy_prefix=false --remove_extra_whitespaces=false --split_digits=true"
                           " --max_sentence_length=1000000 --num_threads=1 --minloglevel=2"
                           " --unk_id=0 --bos_id=1 --pad_id=2 --eos_id=-1";
  Helper helper;
  try {
    helper.call(spm::kTrain, args.data(), args.size(), "training on " + inputs);
  } catch (const Error& e) {
    std::remove((tmp_prefix + ".model").c_str());
    std::remove((tmp_prefix + ".vocab").c_str());
    throw Error(std::string(e.what()) + " (a smaller data.tokenizer.vocab_size often helps)");
  }
  std::remove((tmp_prefix + ".vocab").c_str());
  commit_temp_file(tmp_prefix + ".model", model_path);
}

void SentencePieceTokenizer::encode(std::string_view text, std::vector<uint32_t>& out) const {
  const std::string reply = helper_->call(spm::kEncode, text.data(), text.size(), "encode");
  const size_t n = reply.size() / sizeof(int32_t);
  const size_t base = out.size();
  out.resize(base + n);
  for (size_t i = 0; i < n; ++i) {
    int32_t id;
    std::memcpy(&id, reply.data() + i * sizeof(int32_t), sizeof id);
    out[base + i] = static_cast<uint32_t>(id);
  }
}

std::string SentencePieceTokenizer::decode(const uint32_t* ids, size_t n) const {
  std::vector<int32_t> keep;
  keep.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] != document_id_ && ids[i] != pad_id_) keep.push_back(static_cast<int32_t>(ids[i]));
  }
  return helper_->call(spm::kDecode, keep.data(), keep.size() * sizeof(int32_t), "decode");
}

std::string SentencePieceTokenizer::stored_contents() const { return read_file(model_path_); }

std::string SentencePieceTokenizer::spec() const {
  return std::string(R"({"kind":"sentencepiece","vocab_size":)") + std::to_string(vocab_size_) + R"(,"document_id":)" +
         std::to_string(document_id_) + R"(,"pad_id":)" + std::to_string(pad_id_) + R"(,"mapping_sha256":")" + hash_ +
         "\"}";
}

}  // namespace localist
