#!/usr/bin/env bash
# Shows that check_layering.sh catches each kind of crossing: a clean miniature tree passes,
# and each single forbidden include added to it makes the check fail naming that file.
set -euo pipefail
check=$(cd "$(dirname "$0")" && pwd)/check_layering.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make_tree() {
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree"/{mmu,vma,tools,tests,emu/cpu,emu/image,emu/kernel,emu/signal,emu/fs,emu/syscalls}
  cd "$tmp/tree"
  printf '#include "mmu/types.hpp"\n#include <vector>\n' >mmu/a.cpp
  printf '#include "mmu/page_table.hpp"\n' >vma/a.cpp
  printf '#include "vma/mm.hpp"\n#include <unicorn/unicorn.h>\n#include "emu/cpu/cpu.hpp"\n' >emu/cpu/a.cpp
  printf '#include "vma/mm.hpp"\n' >emu/image/a.cpp
  printf '#include "emu/cpu/cpu.hpp"\n#include "emu/image/elf.hpp"\n#include "emu/fs/fd.hpp"\n' >emu/kernel/a.cpp
  printf '#include "emu/kernel/kernel.hpp"\n' >emu/syscalls/a.cpp
  printf '#include "emu/kernel/kernel.hpp"\n#include "emu/cpu/unicorn_cpu.hpp"\n' >tools/a.cpp
}

fails=0
expect() {  # expect pass|fail DESCRIPTION FILE LINE
  local want=$1 what=$2 file=${3:-} line=${4:-} out rc=0
  make_tree
  [ -z "$file" ] || printf '%s\n' "$line" >>"$file"
  out=$("$check" "$tmp/tree" 2>&1) || rc=$?
  if [ "$want" = pass ] && [ "$rc" -ne 0 ]; then
    echo "FAIL: $what: the clean tree was refused: $out"; fails=$((fails + 1))
  elif [ "$want" = fail ] && { [ "$rc" -eq 0 ] || ! grep -q "^$file:" <<<"$out"; }; then
    echo "FAIL: $what: not caught (exit $rc): $out"; fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}

expect pass "a tree that keeps the layers"
expect fail "mmu includes vma" mmu/b.hpp '#include "vma/mm.hpp"'
expect fail "mmu includes emu" mmu/b.cpp '#include "emu/kernel/kernel.hpp"'
expect fail "vma includes emu" vma/b.cpp '#include "emu/fs/fd.hpp"'
expect fail "vma includes tools" vma/b.hpp '#include "tools/dump.hpp"'
expect fail "emu includes tools" emu/fs/b.cpp '#include "tools/dump.hpp"'
expect fail "emu/cpu includes the kernel" emu/cpu/b.cpp '#include "emu/kernel/process.hpp"'
expect fail "emu/cpu includes the image" emu/cpu/b.cpp '#include "emu/image/elf.hpp"'
expect fail "emu/image includes fs" emu/image/b.cpp '#include "emu/fs/fd.hpp"'
expect fail "emu/image includes the cpu" emu/image/b.cpp '  #  include "emu/cpu/cpu.hpp"'
expect fail "Unicorn outside emu/cpu (kernel)" emu/kernel/b.cpp '#include <unicorn/unicorn.h>'
expect fail "Unicorn outside emu/cpu (tests)" tests/b.cpp '#include <unicorn/arm64.h>'
expect fail "the kernel names the Unicorn backend" emu/kernel/b.cpp '#include "emu/cpu/unicorn_cpu.hpp"'
echo "$((13 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
