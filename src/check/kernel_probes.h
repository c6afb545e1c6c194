// Probes, on the running kernel, each feature ferry relies on.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"

namespace ferry {

struct ProbeResult {
  std::string feature;    // e.g. "userfaultfd"
  std::string needed_by;  // e.g. "lazy restore"
  bool present = false;
  std::string detail;     // what was found, or why it is missing and what that limits
  bool required = false;  // dump and restore cannot work without it
};

// Runs every probe; never fails as a whole (a probe that cannot run reports
// the feature missing with the reason in detail).
std::vector<ProbeResult> run_kernel_probes();

// The probe groups run_kernel_probes() is made of, one per source file, and
// the helpers they share. Not for use outside src/check.
namespace probes {

std::vector<ProbeResult> process_probes();  // process_probes.cpp: ptrace, process_vm, pagemap, clone3, prctl, pidfd
std::vector<ProbeResult> memory_probes();   // memory_probes.cpp: userfaultfd, PAGEMAP_SCAN, soft-dirty

// "EPERM (Operation not permitted)": short enough for a table cell.
std::string errno_text(int sys_errno);
Result<std::string> read_text_file(const std::string& path);

}  // namespace probes
}  // namespace ferry
