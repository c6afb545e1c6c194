#include "base/error.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace ferry {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return fail("value {} is not positive", v);
  return v;
}

Result<int> doubled(int v) {
  int x = FERRY_TRY_CTX(parse_positive(v), "doubling {}", v);
  return 2 * x;
}

Status open_missing() {
  errno = ENOENT;
  return fail_errno("open {}", "/nope");
}

TEST(Error, ValueFlowsThrough) {
  Result<int> r = doubled(21);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 42);
}

TEST(Error, ContextIsPrependedOnTheWayOut) {
  Result<int> r = doubled(-1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "doubling -1: value -1 is not positive");
}

TEST(Error, ErrnoIsKeptWithItsText) {
  Status s = open_missing();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().sys_errno(), ENOENT);
  EXPECT_EQ(s.error().message(), "open /nope: No such file or directory (errno 2)");
}

}  // namespace
}  // namespace ferry
