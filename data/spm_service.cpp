// SPDX-License-Identifier: Apache-2.0
// spm_service.cpp: the SentencePiece helper's service loop (spm_protocol.h): load a
// model, encode, decode, train. Runs in localist-spm, never in a process with LibTorch.
// Limits: frames above kMaxFrameBytes end the session.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <memory>
#include <vector>

#include "data/spm_protocol.h"

namespace localist::spm {
namespace {

bool reply(int fd, uint8_t status, const void* data, uint64_t size) { return write_frame(fd, status, data, size); }
bool reply_error(int fd, const std::string& msg) { return reply(fd, 1, msg.data(), msg.size()); }

// What decides the token mapping: every piece with its score and type, and the ids of
// a probe text (which exercises the normaliser). The serialized model also embeds
// training paths and options, so two identical vocabularies differ byte-wise.
std::string mapping_fingerprint(const sentencepiece::SentencePieceProcessor& sp) {
  std::string out = "sentencepiece-mapping-v1\n";
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    const float score = sp.GetScore(i);
    uint32_t bits;
    std::memcpy(&bits, &score, sizeof bits);
    const char type = sp.IsUnknown(i) ? 'U' : sp.IsControl(i) ? 'C' : sp.IsByte(i) ? 'B' : sp.IsUnused(i) ? 'X' : 'N';
    out += sp.IdToPiece(i) + "\t" + std::to_string(bits) + "\t" + type + "\n";
  }
  std::vector<int> probe;
  if (sp.Encode("  Probe,\ttext 0123 ünïcöde Ａ\r\n", &probe).ok()) {
    for (int id : probe) out += std::to_string(id) + " ";
  }
  return out;
}

}  // namespace

int serve(int in_fd, int out_fd, bool allow_train) {
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp;
  uint8_t op = 0;
  std::string payload;
  while (read_frame(in_fd, op, payload)) {
    bool ok = true;
    if (op == kLoad) {
      auto next = std::make_unique<sentencepiece::SentencePieceProcessor>();
      auto st = next->LoadFromSerializedProto(payload);
      if (!st.ok()) {
        ok = reply_error(out_fd, st.ToString());
      } else {
        sp = std::move(next);
        const int32_t info[3] = {sp->GetPieceSize(), sp->bos_id(), sp->pad_id()};
        std::string out(reinterpret_cast<const char*>(info), sizeof info);
        out += mapping_fingerprint(*sp);
        ok = reply(out_fd, 0, out.data(), out.size());
      }
    } else if (op == kTrain && allow_train) {
      auto st = sentencepiece::SentencePieceTrainer::Train(payload);
      ok = st.ok() ? reply(out_fd, 0, nullptr, 0) : reply_error(out_fd, st.ToString());
    } else if (!sp) {
      ok = reply_error(out_fd, "no model loaded");
    } else if (op == kEncode) {
      std::vector<int> ids;
      auto st = sp->Encode(payload, &ids);
      ok = st.ok() ? reply(out_fd, 0, ids.data(), ids.size() * sizeof(int)) : reply_error(out_fd, st.ToString());
    } else if (op == kDecode) {
      std::vector<int> ids(payload.size() / sizeof(int));
      if (!ids.empty()) std::memcpy(ids.data(), payload.data(), ids.size() * sizeof(int));
      std::string text;
      auto st = sp->Decode(ids, &text);
      ok = st.ok() ? reply(out_fd, 0, text.data(), text.size()) : reply_error(out_fd, st.ToString());
    } else {
      ok = reply_error(out_fd, "unknown request");
    }
    if (!ok) return 1;
  }
  // Input ended, or a frame was cut or oversized: the session is over either way (the
  // client reports a helper that stops answering).
  return 0;
}

}  // namespace localist::spm
