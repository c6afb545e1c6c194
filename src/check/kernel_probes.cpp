#include "check/kernel_probes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "base/unique_fd.h"
#include "cli/version.h"

namespace ferry {
namespace probes {

std::string errno_text(int sys_errno) {
  const char* name = strerrorname_np(sys_errno);
  return fmt::format("{} ({})", name ? name : fmt::format("errno {}", sys_errno), std::strerror(sys_errno));
}

Result<std::string> read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open {}", path);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read {}", path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace probes

namespace {

using probes::errno_text;
using probes::read_text_file;

const Logger kLog{"check"};

// Capability numbers from <linux/capability.h>, spelled out because
// CAP_CHECKPOINT_RESTORE (Linux 5.9) is newer than some headers.
constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysResource = 24;
constexpr int kCapCheckpointRestore = 40;

Result<uint64_t> effective_capabilities() {
  std::string status = FERRY_TRY(read_text_file("/proc/self/status"));
  size_t at = status.find("\nCapEff:");
  if (at == std::string::npos) return fail("no CapEff line in /proc/self/status");
  const char* hex = status.c_str() + at + std::strlen("\nCapEff:");
  char* end = nullptr;
  errno = 0;
  unsigned long long caps = std::strtoull(hex, &end, 16);
  if (end == hex || errno != 0) return fail("unreadable CapEff line in /proc/self/status");
  return static_cast<uint64_t>(caps);
}

std::string pipe_max_size_text() {
  Result<std::string> text = read_text_file("/proc/sys/fs/pipe-max-size");
  if (!text) return "unknown";
  std::string v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  char* end = nullptr;
  unsigned long long bytes = std::strtoull(v.c_str(), &end, 10);
  if (end != v.c_str() && bytes > 0 && bytes % (1024 * 1024) == 0) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} bytes", v);
}

std::vector<ProbeResult> capability_probes() {
  struct Cap {
    int bit;
    const char* name;
    const char* needed_by;
    const char* missing_means;
  };
  const Cap caps[] = {
      {kCapSysPtrace, "CAP_SYS_PTRACE", "dump of other users' tasks",
       "only tasks of ferry's own uid that are dumpable can be seized"},
      {kCapSysAdmin, "CAP_SYS_ADMIN", "restore (set_tid, PR_SET_MM_MAP), pagemap PFNs",
       "pagemap hides PFNs; set_tid and PR_SET_MM_MAP need CAP_CHECKPOINT_RESTORE instead"},
      {kCapCheckpointRestore, "CAP_CHECKPOINT_RESTORE", "restore (set_tid, PR_SET_MM_MAP)",
       "set_tid and PR_SET_MM_MAP need CAP_SYS_ADMIN instead"},
      {kCapSysResource, "CAP_SYS_RESOURCE", "restore of rlimits and pipe sizes", nullptr},
  };
  Result<uint64_t> eff = effective_capabilities();
  std::vector<ProbeResult> rows;
  for (const Cap& c : caps) {
    ProbeResult r{c.name, c.needed_by, false, "", false};
    if (!eff) {
      r.detail = eff.error().message();
    } else if ((*eff >> c.bit) & 1) {
      r.present = true;
      r.detail = "in the effective set";
    } else if (c.bit == kCapSysResource) {
      // Root without it is the case on these machines; say what a restore loses.
      r.detail = fmt::format(
          "not in the effective set: on restore, hard rlimits cannot be raised above the current ones "
          "and pipes cannot exceed fs.pipe-max-size ({}); no PR_SET_MM single-field calls "
          "(PR_SET_MM_MAP still works with CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)",
          pipe_max_size_text());
    } else {
      r.detail = fmt::format("not in the effective set: {}", c.missing_means);
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

// The kernel only attaches a ULP to an established connection, so the probe
// needs a real loopback pair.
ProbeResult probe_kernel_tls() {
  ProbeResult r{"kernel TLS", "TLS offload (optional)", false, "", false};
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) {
    r.detail = "socket: " + errno_text(errno);
    return r;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    r.detail = "loopback listener: " + errno_text(errno);
    return r;
  }
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client || ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    r.detail = "loopback connect: " + errno_text(errno);
    return r;
  }
  // A blocking loopback connect is complete once the handshake is queued, so
  // accept cannot block here.
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!server) {
    r.detail = "loopback accept: " + errno_text(errno);
    return r;
  }
  if (::setsockopt(client.get(), SOL_TCP, TCP_ULP, "tls", 3) == 0) {
    r.present = true;
    r.detail = "TCP_ULP \"tls\" attaches (CONFIG_TLS)";
  } else if (errno == ENOENT) {
    r.detail = "no \"tls\" ULP (CONFIG_TLS unset): encryption happens in user space in GnuTLS";
  } else {
    r.detail = "TCP_ULP \"tls\": " + errno_text(errno) + "; encryption happens in user space in GnuTLS";
  }
  return r;
}

ProbeResult probe_tls_built_in() {
  ProbeResult r{"TLS (GnuTLS) built in", "--tls", tls_built_in(), "", false};
  // version_text() is "ferry X\nTLS: ...\n"; its TLS line is the detail.
  std::string text = version_text();
  size_t at = text.find("TLS: ");
  if (at != std::string::npos) {
    std::string line = text.substr(at + 5);
    if (size_t nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    r.detail = line;
  }
  if (!r.present) r.detail += r.detail.empty() ? "rebuild without NO_GNUTLS" : "; rebuild without NO_GNUTLS";
  return r;
}

}  // namespace

std::vector<ProbeResult> run_kernel_probes() {
  std::vector<ProbeResult> all = probes::process_probes();
  for (ProbeResult& r : probes::memory_probes()) all.push_back(std::move(r));
  all.push_back(probe_kernel_tls());
  all.push_back(probe_tls_built_in());
  for (ProbeResult& r : capability_probes()) all.push_back(std::move(r));
  for (const ProbeResult& r : all)
    kLog.debug("{}: {} ({})", r.feature, r.present ? "present" : "missing", r.detail);
  return all;
}

}  // namespace ferry
