#include "restore/credentials.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <vector>

#include <fmt/format.h>

namespace ferry {
namespace {

struct CapWords {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

uint64_t cap_set(const google::protobuf::RepeatedField<uint32_t>& words) {
  uint64_t v = 0;
  for (int i = 0; i < words.size() && i < 2; ++i) v |= uint64_t{words[i]} << (32 * i);
  return v;
}

Result<CapWords> own_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return fail_errno("capget");
  CapWords c;
  c.effective = data[0].effective | (uint64_t{data[1].effective} << 32);
  c.permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  c.inheritable = data[0].inheritable | (uint64_t{data[1].inheritable} << 32);
  return c;
}

uint64_t own_bounding_set() {
  uint64_t set = 0;
  for (int cap = 0; cap < 64; ++cap)
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) set |= uint64_t{1} << cap;
  return set;
}

Result<bool> same_as_ferry(const images::CredsEntry& c) {
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  ::getresuid(&ru, &eu, &su);
  ::getresgid(&rg, &eg, &sg);
  if (c.uid() != ru || c.euid() != eu || c.suid() != su || c.fsuid() != eu) return false;
  if (c.gid() != rg || c.egid() != eg || c.sgid() != sg || c.fsgid() != eg) return false;
  std::vector<gid_t> groups(static_cast<size_t>(std::max(0, ::getgroups(0, nullptr))));
  if (::getgroups(static_cast<int>(groups.size()), groups.data()) < 0) return fail_errno("getgroups");
  if (std::vector<gid_t>(c.groups().begin(), c.groups().end()) != groups) return false;
  CapWords own = FERRY_TRY(own_caps());
  if (cap_set(c.cap_eff()) != own.effective || cap_set(c.cap_prm()) != own.permitted ||
      cap_set(c.cap_inh()) != own.inheritable)
    return false;
  if (cap_set(c.cap_bnd()) != own_bounding_set()) return false;
  if (cap_set(c.cap_amb()) != 0) return false;
  if (static_cast<int>(c.secbits()) != ::prctl(PR_GET_SECUREBITS, 0, 0, 0, 0)) return false;
  if (c.has_no_new_privs() && c.no_new_privs() != 0) return false;
  return true;
}

}  // namespace

Status restore_credentials(Trampoline& t, const images::CredsEntry& c) {
  if (FERRY_TRY(same_as_ferry(c))) return {};
  auto step = [&](std::string_view what, long nr, auto... args) -> Status {
    FERRY_TRY(t.call_checked(fmt::format("credentials: {}", what), nr, args...));
    return {};
  };
  // Privileged steps first, while the task still has Ferry's capabilities.
  uint64_t bounding = cap_set(c.cap_bnd());
  uint64_t own_bounding = own_bounding_set();
  for (int cap = 0; cap < 64; ++cap)
    if ((own_bounding & (uint64_t{1} << cap)) && !(bounding & (uint64_t{1} << cap)))
      FERRY_TRY(step(fmt::format("drop capability {} from the bounding set", cap), SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0));
  FERRY_TRY(step("securebits", SYS_prctl, PR_SET_SECUREBITS, c.secbits() | SECBIT_KEEP_CAPS, 0, 0, 0));
  t.clear_scratch();
  std::vector<gid_t> groups(c.groups().begin(), c.groups().end());
  uint64_t remote_groups = FERRY_TRY(t.put(std::as_bytes(std::span(groups))));
  FERRY_TRY(step("setgroups", SYS_setgroups, groups.size(), remote_groups));
  FERRY_TRY(step("setresgid", SYS_setresgid, c.gid(), c.egid(), c.sgid()));
  FERRY_TRY(step("setfsgid", SYS_setfsgid, c.fsgid()));
  FERRY_TRY(step("setresuid", SYS_setresuid, c.uid(), c.euid(), c.suid()));
  FERRY_TRY(step("setfsuid", SYS_setfsuid, c.fsuid()));
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  std::array<__user_cap_data_struct, 2> data{};
  uint64_t eff = cap_set(c.cap_eff()), prm = cap_set(c.cap_prm()), inh = cap_set(c.cap_inh());
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(eff >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(prm >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(inh >> (32 * i));
  }
  uint64_t remote_hdr = FERRY_TRY(t.put_object(hdr));
  uint64_t remote_data = FERRY_TRY(t.put_object(data));
  FERRY_TRY(step("capset", SYS_capset, remote_hdr, remote_data));
  if (!(c.secbits() & SECBIT_KEEP_CAPS)) FERRY_TRY(step("keepcaps off", SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0));
  uint64_t ambient = cap_set(c.cap_amb());
  for (int cap = 0; cap < 64; ++cap)
    if (ambient & (uint64_t{1} << cap))
      FERRY_TRY(step(fmt::format("raise ambient capability {}", cap), SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0));
  if (c.has_no_new_privs() && c.no_new_privs() != 0)
    FERRY_TRY(step("no_new_privs", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  return {};
}

}  // namespace ferry
