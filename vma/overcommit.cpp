// Mode 0 keeps no running total (vm_committed_as only matters to mode 2), so the check is a
// comparison with the machine's size.
#include "vma/overcommit.hpp"

namespace mmemu {

Result<void> vm_enough_memory(const Mm& mm, std::uint64_t pages) {
  if (pages > mm.machine().commit_limit_pages) return fail(ENOMEM);
  return {};
}

}  // namespace mmemu
