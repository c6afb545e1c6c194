// Runs a real program and collects what it printed and how it ended.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ferry::test {

struct ProcessResult {
  int exit_code = -1;    // exit status, or 128 + signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

struct RunOptions {
  std::vector<std::string> extra_env;  // "NAME=value"
  std::chrono::milliseconds timeout{60000};
  std::vector<int> keep_fds;           // fds the child inherits at the same numbers
};

// Runs argv[0] (searched in PATH) and waits for it, killing it (by PID) at the
// timeout.
ProcessResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs the ferry binary under test with the given arguments.
ProcessResult run_ferry(const std::vector<std::string>& args, const RunOptions& options = {});

// A child started in the background; killed and reaped on destruction.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const RunOptions& options = {});
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  ~BackgroundProcess();

  pid_t pid() const { return pid_; }
  // Waits for the exit and collects the output.
  ProcessResult wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));
  void kill_now(int signal);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  ProcessResult result_;
};

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content, mode_t mode = 0644);

}  // namespace ferry::test
