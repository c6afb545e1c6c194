#include "proc/task_memory.h"

#include <sys/uio.h>

#include <cerrno>

namespace ferry {

// The kernel may transfer less than asked (a range crossing into an unmapped
// page); the loop goes on from there so that the error names the address.
Status read_task_memory(pid_t pid, uint64_t address, std::span<std::byte> out) {
  size_t done = 0;
  while (done < out.size()) {
    iovec local{out.data() + done, out.size() - done};
    iovec remote{reinterpret_cast<void*>(static_cast<uintptr_t>(address + done)), out.size() - done};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read {} bytes of process {} at {:#x}", out.size() - done, pid, address + done);
    if (n == 0) return fail("read process {} at {:#x}: nothing readable", pid, address + done);
    done += static_cast<size_t>(n);
  }
  return {};
}

Status write_task_memory(pid_t pid, uint64_t address, std::span<const std::byte> data) {
  size_t done = 0;
  while (done < data.size()) {
    iovec local{const_cast<std::byte*>(data.data()) + done, data.size() - done};
    iovec remote{reinterpret_cast<void*>(static_cast<uintptr_t>(address + done)), data.size() - done};
    ssize_t n = ::process_vm_writev(pid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("write {} bytes to process {} at {:#x}", data.size() - done, pid, address + done);
    if (n == 0) return fail("write process {} at {:#x}: nothing writable", pid, address + done);
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace ferry
