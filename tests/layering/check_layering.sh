#!/usr/bin/env bash
# The layering rule of mmemu, checked on the #include lines of a source tree:
#   tools -> emu -> vma -> mmu, never backwards;
#   emu/cpu and emu/image include nothing from the rest of emu/ (they are libraries of
#   their own that the kernel side uses);
#   a Unicorn header, or the Unicorn backend's own headers, only inside emu/cpu.
# Usage: check_layering.sh [ROOT]   (default: the repository this script lives in).
# Prints one line per crossing ("file:line: includes X: rule") and exits 1 if there is any.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

bad=0
# check DIR PATTERN RULE: an include in DIR (recursively) whose target matches PATTERN.
check() {
  local dir=$1 pattern=$2 rule=$3 hit
  [ -d "$dir" ] || return 0
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    local file=${hit%%:*} rest=${hit#*:}
    local line=${rest%%:*} text=${rest#*:}
    local target
    target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*)[>"].*/\1/' <<<"$text")
    echo "$file:$line: includes $target: $rule"
    bad=1
  done < <(grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' --include='*.c' \
             --include='*.inc' "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($pattern)" \
             "$dir" || true)
}

check mmu 'vma/|emu/|tools/' 'mmu/ is the bottom layer: it includes nothing from vma/, emu/ or tools/'
check vma 'emu/|tools/' 'vma/ includes nothing from emu/ or tools/'
check emu 'tools/' 'emu/ includes nothing from tools/'
check emu/cpu 'emu/(kernel|signal|fs|syscalls|image)/' 'emu/cpu/ includes nothing from the rest of emu/'
check emu/image 'emu/(kernel|signal|fs|syscalls|cpu)/' 'emu/image/ includes nothing from the rest of emu/'
for dir in mmu vma tools tests emu/kernel emu/signal emu/fs emu/syscalls emu/image; do
  check "$dir" 'unicorn/' 'Unicorn headers are included only inside emu/cpu/'
done
for dir in emu/kernel emu/signal emu/fs emu/syscalls emu/image; do
  check "$dir" 'emu/cpu/unicorn_' 'the kernel side names only the Cpu interface, never the Unicorn backend'
done
if [ "$bad" -ne 0 ]; then
  echo "layering: includes cross the layers (see above)"
  exit 1
fi
echo "layering: ok"
