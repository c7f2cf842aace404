// The invariant checker (validate_mm): everything that must hold between the maple tree,
// the VMAs, the anon_vma chains, the page tables, the frame descriptors and the counters.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "vma/mm.hpp"

namespace mmemu {

// Problems found in one address space; empty when it is consistent. Frame map counts are
// checked as lower bounds here (other address spaces may map the same frames).
std::vector<std::string> validate_mm(const Mm& mm);

// validate_mm for each, plus the machine-wide checks: every frame's mapcount equals the
// number of PTEs (over all of these address spaces) that map it, and its refcount covers
// those mappings plus the page cache.
std::vector<std::string> validate_mms(std::span<const Mm* const> mms);

}  // namespace mmemu
