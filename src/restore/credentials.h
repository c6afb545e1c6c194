// Credentials of a restored process, set last (through the trampoline: the
// mm work before needs Ferry's privileges in the task). Nothing is done
// when they equal Ferry's own, the usual case of a local restore as root.
#pragma once

#include "base/error.h"
#include "core.pb.h"
#include "restore/trampoline.h"

namespace ferry {

Status restore_credentials(Trampoline& t, const images::CredsEntry& creds);

}  // namespace ferry
