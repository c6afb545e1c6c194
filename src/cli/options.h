// The one value that the command line turns into. It is passed down
// explicitly; nothing reads options from a global.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

enum class Command { kDump, kPreDump, kRestore, kPageServer, kLazyPages, kCheck };

// The CRIU spelling of a command word.
const char* command_name(Command c);

// Where TLS credentials come from. The default paths depend on the build's
// system configuration prefix (FERRY_SYSCONFDIR, /etc by default).
struct TlsOptions {
  bool enabled = false;
  std::string cacert;
  std::string cacrl;
  std::string cert;
  std::string key;
  // Whether each path was given on the command line (an explicit file must
  // load; a default one may be absent).
  bool cacert_given = false;
  bool cacrl_given = false;
  bool cert_given = false;
  bool key_given = false;
  bool no_cn_verify = false;
  std::string priority;                // empty: the GnuTLS default
  std::vector<std::string> peer_names;  // allow-list; empty: anyone the CA vouches for
};

// Header layout of the page-server protocol (see page-server-protocol.md §0).
// A server may detect it from the first header (kAuto).
enum class PsLayout { kModern32, kLegacy24, kAuto };

struct Options {
  Command command = Command::kCheck;

  // Common.
  std::string images_dir = ".";
  std::string work_dir;  // empty: same as images_dir
  std::string log_file;  // empty: stderr
  bool log_pid = false;
  int verbosity = 2;
  bool display_stats = false;
  std::string pidfile;

  // Dump / pre-dump.
  pid_t tree = 0;
  bool leave_running = false;
  bool leave_stopped = false;
  bool shell_job = false;
  bool page_server = false;
  bool lazy_pages = false;
  bool track_mem = false;
  std::string prev_images_dir;
  bool auto_dedup = false;
  std::string pre_dump_mode = "splice";
  unsigned freeze_timeout = 10;  // --timeout, seconds
  bool stream = false;

  // Restore (-d is --restore-detached there, --daemon elsewhere).
  bool detach = false;
  bool restore_sibling = false;

  // Connection.
  std::string address;       // empty: not given
  uint16_t port = 0;         // 0: not given
  int ps_socket = -1;        // inherited connected socket
  int status_fd = -1;
  PsLayout ps_layout = PsLayout::kModern32;
  unsigned io_timeout = 60;  // seconds a connect, handshake or single transfer may stall; 0 = forever
  TlsOptions tls;

  // check.
  bool json = false;

  // The directory that -o, --pidfile and stats files are relative to.
  const std::string& effective_work_dir() const { return work_dir.empty() ? images_dir : work_dir; }
  // A relative path of -o, --pidfile, ... taken relative to the work dir;
  // an absolute or empty one as it is.
  std::string in_work_dir(const std::string& path) const {
    if (path.empty() || path.front() == '/') return path;
    return effective_work_dir() + "/" + path;
  }
};

}  // namespace ferry
