// Reading and writing another process's memory with process_vm_readv/writev:
// no ptrace stop needed, but, unlike SeizedTask::poke, only what the target
// itself may read or write (a read-only mapping cannot be written).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "base/error.h"

namespace ferry {

// Reads out.size() bytes at `address`; anything short of all is an error.
Status read_task_memory(pid_t pid, uint64_t address, std::span<std::byte> out);
// Writes all of data at `address`.
Status write_task_memory(pid_t pid, uint64_t address, std::span<const std::byte> data);

template <class T>
  requires std::is_trivially_copyable_v<T>
Result<T> read_task_object(pid_t pid, uint64_t address) {
  T value{};
  FERRY_TRY(read_task_memory(pid, address, std::as_writable_bytes(std::span(&value, 1))));
  return value;
}

template <class T>
  requires std::is_trivially_copyable_v<T>
Status write_task_object(pid_t pid, uint64_t address, const T& value) {
  return write_task_memory(pid, address, std::as_bytes(std::span(&value, 1)));
}

}  // namespace ferry
