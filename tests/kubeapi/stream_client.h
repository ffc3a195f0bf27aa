#pragma once
// A minimal HTTP/1.1 client for watch streams in tests: sends one request on a fresh connection
// and reads the chunked NDJSON body line by line as it arrives, with a deadline per read.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kh/common/strings.h"

namespace kh::kubeapi::testing {

class StreamClient {
 public:
  /** Connects to 127.0.0.1:`port` and sends GET `target` with `headers` ("Name: value\r\n"...). */
  static absl::StatusOr<std::unique_ptr<StreamClient>> get(uint16_t port, const std::string& target,
                                                           const std::string& headers = {}) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return absl::UnavailableError("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto client = std::unique_ptr<StreamClient>(new StreamClient(fd));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return absl::UnavailableError("connect");
    }
    std::string request =
        common::strCat("GET ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n", headers, "\r\n");
    if (::send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
      return absl::UnavailableError("send");
    }
    return client;
  }

  ~StreamClient() { ::close(fd_); }

  /** Reads until the response head is in. @return the status code. */
  absl::StatusOr<int> status(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (head_.empty()) {
      size_t end = raw_.find("\r\n\r\n");
      if (end != std::string::npos) {
        head_ = raw_.substr(0, end + 4);
        raw_.erase(0, end + 4);
        break;
      }
      absl::Status st = readSome(deadline);
      if (!st.ok()) return st;
    }
    return std::stoi(head_.substr(9, 3));
  }

  const std::string& head() const { return head_; }

  /**
   * The next line of the body (without its '\n'). @return OutOfRange once the body ended (the
   * last chunk arrived), DeadlineExceeded on timeout.
   */
  absl::StatusOr<std::string> nextLine(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto st = status(timeout);
    if (!st.ok()) return st.status();
    while (true) {
      size_t nl = body_.find('\n');
      if (nl != std::string::npos) {
        std::string line = body_.substr(0, nl);
        body_.erase(0, nl + 1);
        return line;
      }
      if (ended_) return absl::OutOfRangeError("the stream ended");
      // Decode whatever complete chunks are buffered.
      bool progressed = false;
      while (true) {
        size_t crlf = raw_.find("\r\n");
        if (crlf == std::string::npos) break;
        size_t size = std::stoul(raw_.substr(0, crlf), nullptr, 16);
        if (size == 0) {
          ended_ = true;
          progressed = true;
          break;
        }
        if (raw_.size() < crlf + 2 + size + 2) break;
        body_ += raw_.substr(crlf + 2, size);
        raw_.erase(0, crlf + 2 + size + 2);
        progressed = true;
      }
      if (progressed) continue;
      absl::Status rs = readSome(deadline);
      if (absl::IsOutOfRange(rs)) {
        ended_ = true;  // connection closed
        continue;
      }
      if (!rs.ok()) return rs;
    }
  }

 private:
  explicit StreamClient(int fd) : fd_(fd) {}

  absl::Status readSome(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("timed out");
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n == 0) return absl::DeadlineExceededError("timed out");
    if (n < 0) return absl::UnavailableError("poll");
    char buf[16384];
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got == 0) return absl::OutOfRangeError("closed");
    if (got < 0) return absl::UnavailableError("recv");
    raw_.append(buf, static_cast<size_t>(got));
    return absl::OkStatus();
  }

  int fd_;
  std::string raw_;  // bytes not decoded yet
  std::string head_;
  std::string body_;  // decoded body not returned yet
  bool ended_ = false;
};

}  // namespace kh::kubeapi::testing
