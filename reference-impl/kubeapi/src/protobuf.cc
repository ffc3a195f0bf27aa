#include "protobuf.h"

#include <cstdint>
#include <functional>

#include "kh/kubeapi/errors.h"

namespace kh::kubeapi::internal {
namespace {

using nlohmann::json;

// Calls `field(number, wire_type, varint, bytes)` for each field of a message.
bool forEachField(std::string_view msg,
                  const std::function<void(uint32_t, int, uint64_t, std::string_view)>& field) {
  size_t i = 0;
  auto varint = [&](uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= msg.size()) return false;
      uint8_t b = static_cast<uint8_t>(msg[i++]);
      out |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80u) == 0) return true;
    }
    return false;
  };
  while (i < msg.size()) {
    uint64_t key = 0;
    if (!varint(key)) return false;
    auto number = static_cast<uint32_t>(key >> 3);
    int wire = static_cast<int>(key & 7);
    uint64_t value = 0;
    std::string_view bytes;
    switch (wire) {
      case 0:
        if (!varint(value)) return false;
        break;
      case 1:
        if (i + 8 > msg.size()) return false;
        i += 8;
        break;
      case 5:
        if (i + 4 > msg.size()) return false;
        i += 4;
        break;
      case 2:
        if (!varint(value) || value > msg.size() - i) return false;
        bytes = msg.substr(i, static_cast<size_t>(value));
        i += static_cast<size_t>(value);
        break;
      default: return false;
    }
    field(number, wire, value, bytes);
  }
  return true;
}

bool decodeMapEntry(std::string_view entry, json& into) {
  std::string key, value;
  bool ok = forEachField(entry, [&](uint32_t n, int wire, uint64_t, std::string_view b) {
    if (wire != 2) return;
    if (n == 1) key = std::string(b);
    if (n == 2) value = std::string(b);
  });
  if (ok) into[key] = value;
  return ok;
}

bool decodeObjectMeta(std::string_view msg, json& meta) {
  bool ok = true;
  ok &= forEachField(msg, [&](uint32_t n, int wire, uint64_t, std::string_view b) {
    if (wire != 2 || b.empty()) return;
    switch (n) {
      case 1: meta["name"] = std::string(b); break;
      case 2: meta["generateName"] = std::string(b); break;
      case 3: meta["namespace"] = std::string(b); break;
      case 11: ok &= decodeMapEntry(b, meta["labels"]); break;
      case 12: ok &= decodeMapEntry(b, meta["annotations"]); break;
      case 14: meta["finalizers"].push_back(std::string(b)); break;
      default: break;
    }
  });
  return ok;
}

}  // namespace

absl::StatusOr<json> decodeProtobufObject(std::string_view bytes) {
  constexpr std::string_view kMagic("k8s\0", 4);
  if (bytes.substr(0, 4) != kMagic) return badRequestError("not a Kubernetes protobuf envelope");
  std::string api_version, kind;
  std::string_view raw;
  bool ok = forEachField(bytes.substr(4), [&](uint32_t n, int wire, uint64_t, std::string_view b) {
    if (wire != 2) return;
    if (n == 1) {
      forEachField(b, [&](uint32_t tn, int tw, uint64_t, std::string_view tb) {
        if (tw != 2) return;
        if (tn == 1) api_version = std::string(tb);
        if (tn == 2) kind = std::string(tb);
      });
    } else if (n == 2) {
      raw = b;
    }
  });
  if (!ok) return badRequestError("malformed protobuf body");
  json object = {{"apiVersion", api_version}, {"kind", kind}, {"metadata", json::object()}};
  ok = forEachField(raw,
                    [&](uint32_t n, int wire, uint64_t, std::string_view b) {
                      if (wire != 2) return;
                      if (n == 1) ok &= decodeObjectMeta(b, object["metadata"]);
                      if (n == 2 && kind == "Namespace") {
                        forEachField(b, [&](uint32_t sn, int sw, uint64_t, std::string_view sb) {
                          if (sn == 1 && sw == 2)
                            object["spec"]["finalizers"].push_back(std::string(sb));
                        });
                      }
                    }) &&
       ok;
  if (!ok) return badRequestError("malformed protobuf object");
  return object;
}

}  // namespace kh::kubeapi::internal
