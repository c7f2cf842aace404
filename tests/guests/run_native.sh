#!/usr/bin/env bash
# Runs the guest programs outside mmemu to get reference results: every x86_64 guest on the
# host kernel (the reference for both architectures) and every arm64 guest under
# qemu-aarch64 (only to show that the arm64 builds run; qemu-user is no reference for
# memory semantics). Prints one line per run: name, arch, exit status, a digest of the
# standard output and its line count, and for arm64 whether its output equals the native one.
#
# usage: run_native.sh [--arch x86_64|arm64|both] [--out DIR] [--timeout SECONDS] [--quiet]
#                      [--strict] [GUEST_DIR] [NAME...]
#   GUEST_DIR  directory holding guests.txt, x86_64/ and arm64/ (default: $MMEMU_GUEST_DIR)
#   NAME...    run only these guests (default: every name in guests.txt)
#   --out DIR  keep DIR/<arch>/<name>.out, .err and .status (the status is a number, or
#              "timeout")
#   --quiet    print only failures
#   --strict   also fail when an arm64 run differs from the native run
# Exit status: 0 when every native run exited 0 (and, with --strict, every arm64 output and
# status matched the native ones), 1 otherwise, 2 on usage errors.
set -uo pipefail

arch=both
out=""
timeout_s=60
quiet=0
strict=0
dir="${MMEMU_GUEST_DIR:-}"
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --strict) strict=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "run_native.sh: unknown option $1" >&2; exit 2 ;;
    *) if [ -z "$dir" ] || [ -f "$1/guests.txt" ]; then dir="$1"; else names+=("$1"); fi; shift ;;
  esac
done
case "$arch" in x86_64|arm64|both) ;; *) echo "run_native.sh: bad --arch $arch" >&2; exit 2 ;; esac
if [ -z "$dir" ] || [ ! -f "$dir/guests.txt" ]; then
  echo "run_native.sh: no guests.txt in '${dir}'; pass the build's guests directory" \
       "(\${build}/guests) or set MMEMU_GUEST_DIR" >&2
  exit 2
fi
dir="$(cd "$dir" && pwd)"
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <(grep -v '^$' "$dir/guests.txt")
fi
if [ "$arch" != x86_64 ] && ! command -v qemu-aarch64 >/dev/null; then
  echo "run_native.sh: qemu-aarch64 not found (tools/deps installs qemu-user)" >&2
  exit 2
fi
if [ "$(uname -m)" != x86_64 ] && [ "$arch" != arm64 ]; then
  echo "run_native.sh: the native reference needs an x86_64 host" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "$out" ] && ! mkdir -p "$out/x86_64" "$out/arm64"; then
  echo "run_native.sh: cannot create $out" >&2; exit 2
fi

# run ARCH NAME: runs one guest from a scratch directory; leaves .out/.err/.status in $work.
run() {
  local a="$1" n="$2" exe="$dir/$1/$2" rc
  local base="$work/$a.$n"
  if [ ! -x "$exe" ]; then
    echo missing >"$base.status"; : >"$base.out"; : >"$base.err"
    return
  fi
  local runner=()
  [ "$a" = arm64 ] && runner=(qemu-aarch64)
  # SIGKILL to the whole process group at the deadline: a hung guest's forked children
  # (which may not die of SIGTERM under qemu-user) go too. The braces keep bash's own
  # "Killed" report off the terminal.
  local t0=$SECONDS
  { (cd "$work" && exec timeout -s KILL "$timeout_s" "${runner[@]}" "$exe") >"$base.out" \
      2>"$base.err" </dev/null; } 2>/dev/null
  rc=$?
  if [ $rc -eq 137 ] && [ $((SECONDS - t0)) -ge "$timeout_s" ]; then echo timeout; else echo $rc; fi \
    >"$base.status"
  if [ -n "$out" ]; then
    cp "$base.out" "$out/$a/$n.out"; cp "$base.err" "$out/$a/$n.err"
    cp "$base.status" "$out/$a/$n.status"
  fi
}

digest() { sha256sum "$1" | cut -c1-16; }

fail=0
[ $quiet -eq 0 ] && printf '%-16s %-7s %-8s %-16s %6s  %s\n' guest arch status stdout-sha256 lines vs-native
for n in "${names[@]}"; do
  for a in x86_64 arm64; do
    [ "$arch" = both ] || [ "$arch" = "$a" ] || continue
    run "$a" "$n"
    st="$(cat "$work/$a.$n.status")"
    base="$work/$a.$n"
    cmp=""
    bad=0
    if [ "$a" = x86_64 ]; then
      [ "$st" = 0 ] || bad=1
    elif [ -f "$work/x86_64.$n.out" ]; then
      if cmp -s "$base.out" "$work/x86_64.$n.out" && [ "$st" = "$(cat "$work/x86_64.$n.status")" ]; then
        cmp=same
      else
        cmp=DIFF
        [ $strict -eq 1 ] && bad=1
      fi
    elif [ "$st" != 0 ]; then
      [ $strict -eq 1 ] && bad=1
    fi
    [ $bad -eq 1 ] && fail=1
    if [ $quiet -eq 0 ] || [ $bad -eq 1 ]; then
      printf '%-16s %-7s %-8s %-16s %6s  %s\n' "$n" "$a" "$st" "$(digest "$base.out")" \
        "$(wc -l <"$base.out")" "$cmp"
    fi
    if [ $bad -eq 1 ]; then
      grep '^FAIL' "$base.out" | sed 's/^/    | /' | head -20
      sed 's/^/    ! /' "$base.err" | head -20
    fi
  done
done
exit $fail
