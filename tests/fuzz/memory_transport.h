// A Transport over a byte buffer, for the fuzz targets only: what the "peer"
// sends is the fuzz input; what we send is counted and dropped.
#pragma once

#include <cstring>

#include "net/transport.h"

namespace ferry::fuzz {

class MemoryTransport final : public Transport {
 public:
  explicit MemoryTransport(std::span<const std::byte> input) : input_(input) {}

  Status write_all(std::span<const std::byte> data) override {
    if (closed_) return fail("send to {}: closed", peer_);
    sent_ += data.size();
    return {};
  }
  Result<bool> read_exact_or_end(std::span<std::byte> data) override {
    if (closed_) return fail("receive from {}: closed", peer_);
    if (data.empty()) return true;
    if (at_ == input_.size()) return false;
    if (input_.size() - at_ < data.size()) {
      at_ = input_.size();
      return fail("receive from {}: connection closed mid-message", peer_);
    }
    std::memcpy(data.data(), input_.data() + at_, data.size());
    at_ += data.size();
    return true;
  }
  Status read_exact(std::span<std::byte> data) override {
    if (!FERRY_TRY(read_exact_or_end(data))) return fail("receive from {}: connection closed", peer_);
    return {};
  }
  Status close() override {
    closed_ = true;
    return {};
  }
  void abort() override { closed_ = true; }
  const std::string& peer() const override { return peer_; }
  std::string description() const override { return "memory"; }

 private:
  std::span<const std::byte> input_;
  size_t at_ = 0;
  size_t sent_ = 0;
  bool closed_ = false;
  std::string peer_ = "fuzz input";
};

}  // namespace ferry::fuzz
