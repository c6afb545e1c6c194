// `ferry page-server` on a loopback address, started and known to listen
// (its --status-fd byte arrived).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/subprocess.h"

namespace ferry::test {

class PageServerProcess {
 public:
  PageServerProcess(const std::string& dir, const std::vector<std::string>& extra,
                    const std::string& address = "127.0.0.1");
  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  bool ready() const { return ready_; }
  ProcessResult wait();
  void kill_now(int signal) { process_->kill_now(signal); }

 private:
  int port_;
  std::unique_ptr<BackgroundProcess> process_;
  bool ready_ = false;
};

}  // namespace ferry::test
