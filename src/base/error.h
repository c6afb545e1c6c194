// Errors as values: every failure carries what was being done (file, peer,
// request) and, where the kernel said so, the errno. One place (main) turns an
// Error into a message and an exit code.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace ferry {

class Error {
 public:
  explicit Error(std::string message, int sys_errno = 0)
      : message_(std::move(message)), errno_(sys_errno) {}

  // "what: strerror (errno N)".
  static Error from_errno(int sys_errno, std::string_view what);

  // Prepends an outer layer of context: "outer: inner".
  Error with_context(std::string_view outer) const&;
  Error with_context(std::string_view outer) &&;

  const std::string& message() const { return message_; }
  int sys_errno() const { return errno_; }

 private:
  std::string message_;
  int errno_;
};

// What a failing function returns; converts to any Result<T>.
struct Failure {
  Error error;
};

// A value or the Error that prevented it (std::expected is not usable with
// clang 14, which builds the fuzz targets, so Ferry carries its own).
template <class T>
class [[nodiscard]] Result {
 public:
  template <class U = T>
    requires std::is_constructible_v<T, U&&> && (!std::is_same_v<std::remove_cvref_t<U>, Result>) &&
             (!std::is_same_v<std::remove_cvref_t<U>, Failure>)
  Result(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}
  Result(Failure f) : v_(std::in_place_index<1>, std::move(f.error)) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Failure f) : error_(std::move(f.error)) {}

  bool has_value() const { return !error_; }
  explicit operator bool() const { return has_value(); }
  void value() const {}
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Failure fail(Error e) { return Failure{std::move(e)}; }

template <class... Args>
Failure fail(fmt::format_string<Args...> f, Args&&... args) {
  return Failure{Error(fmt::format(f, std::forward<Args>(args)...))};
}

// Fails with the current errno and a description of the call that failed.
template <class... Args>
Failure fail_errno(fmt::format_string<Args...> f, Args&&... args) {
  int e = errno;
  return Failure{Error::from_errno(e, fmt::format(f, std::forward<Args>(args)...))};
}

}  // namespace ferry

// Evaluates a Result/Status expression; on failure returns its error from the
// enclosing function, otherwise yields the value (GNU statement expression).
#define FERRY_TRY(expr)                                              \
  ({                                                                 \
    auto ferry_try_result_ = (expr);                                 \
    if (!ferry_try_result_) return ::ferry::Failure{std::move(ferry_try_result_).error()}; \
    std::move(ferry_try_result_).value();                            \
  })

// Like FERRY_TRY, adding context to the error on the way out.
#define FERRY_TRY_CTX(expr, ...)                                     \
  ({                                                                 \
    auto ferry_try_result_ = (expr);                                 \
    if (!ferry_try_result_)                                          \
      return ::ferry::Failure{std::move(ferry_try_result_).error().with_context(fmt::format(__VA_ARGS__))}; \
    std::move(ferry_try_result_).value();                            \
  })
