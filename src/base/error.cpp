#include "base/error.h"

#include <cstring>

namespace ferry {

Error Error::from_errno(int sys_errno, std::string_view what) {
  return Error(fmt::format("{}: {} (errno {})", what, std::strerror(sys_errno), sys_errno), sys_errno);
}

Error Error::with_context(std::string_view outer) const& {
  return Error(fmt::format("{}: {}", outer, message_), errno_);
}

Error Error::with_context(std::string_view outer) && {
  message_ = fmt::format("{}: {}", outer, message_);
  return std::move(*this);
}

}  // namespace ferry
