#include "support/page_server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <stdexcept>

#include "support/test_pki.h"

namespace ferry::test {

PageServerProcess::PageServerProcess(const std::string& dir, const std::vector<std::string>& extra,
                                     const std::string& address)
    : port_(free_port()) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::vector<std::string> argv{FERRY_BINARY, "page-server", "-D", dir, "--address", address, "--port",
                                std::to_string(port_), "--status-fd", std::to_string(p[1]), "-v4"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunOptions ro;
  ro.keep_fds = {p[1]};
  process_ = std::make_unique<BackgroundProcess>(argv, ro);
  ::close(p[1]);
  pollfd pf{p[0], POLLIN, 0};
  char byte = 1;
  ready_ = ::poll(&pf, 1, 20000) == 1 && ::read(p[0], &byte, 1) == 1 && byte == 0;
  ::close(p[0]);
}

ProcessResult PageServerProcess::wait() { return process_->wait(std::chrono::milliseconds(60000)); }

}  // namespace ferry::test
