#!/usr/bin/env bash
# Side-by-side timing of the bench guests (tests/bench/guests): natively (the x86_64 build
# on the host kernel), under qemu-user (qemu-x86_64, qemu-aarch64) and under `mmemu run`
# (both architectures). Each cell is the best wall-clock time of --runs runs, with its
# ratio to native; prints a Markdown table.
#   compute   the compute loop (mmemu vs plain Unicorn on the same binary: bench_emu)
#   fault256  demand-faulting 256 MiB of private anonymous memory, one write per page
#   forkloop  fork + _exit + waitpid, --forks times
# A measurement, not a test (not in ctest). Exit status: 0, 1 when a guest failed or its
# output differed from the native run's, 2 on usage errors or a missing build.
#
# usage: compare.sh [--build DIR] [--runs N] [--compute ITERATIONS] [--fault-mib MIB]
#                   [--forks N]
#   --build DIR  build tree holding mmemu and bench-guests/ (default: build/release at the
#                repository root)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/../../build/release"
runs=3
compute_n=10000000
fault_mib=256
forks=500

usage() {
  sed -n '/^# usage:/,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="${2:?}"; shift 2 ;;
    --runs) runs="${2:?}"; shift 2 ;;
    --compute) compute_n="${2:?}"; shift 2 ;;
    --fault-mib) fault_mib="${2:?}"; shift 2 ;;
    --forks) forks="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage ;;
  esac
done

mmemu="$build/mmemu"
guests="$build/bench-guests"
if [ ! -x "$mmemu" ] || [ ! -d "$guests/x86_64" ] || [ ! -d "$guests/arm64" ]; then
  echo "compare.sh: $build has no mmemu or bench-guests/ (build the targets mmemu and" \
       "bench_guests, or pass --build DIR)" >&2
  exit 2
fi

qemu_x86="$(command -v qemu-x86_64 || true)"
qemu_arm="$(command -v qemu-aarch64 || true)"
[ -n "$qemu_x86" ] || echo "compare.sh: qemu-x86_64 not found: its column is skipped" >&2
[ -n "$qemu_arm" ] || echo "compare.sh: qemu-aarch64 not found: its column is skipped" >&2

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0

# stamp: sets $stamp to the wall clock in seconds; bash 5's $EPOCHREALTIME forks nothing.
stamp() {
  if [ -n "${EPOCHREALTIME:-}" ]; then stamp="${EPOCHREALTIME/,/.}"; else stamp=$(date +%s.%N); fi
}

# best_time EXPECTED_OUT CMD...: sets $best to the best time of $runs runs in seconds, or
# to FAIL/DIFF (and failed=1) when a run exits non-zero or prints other output.
best_time() {
  local expected="$1" t0 t1 st dt i
  best=""
  shift
  for ((i = 0; i < runs; i++)); do
    stamp
    t0=$stamp
    "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    st=$?
    stamp
    t1=$stamp
    if [ $st -ne 0 ]; then
      echo "compare.sh: exit status $st from: $*" >&2
      sed 's/^/  | /' "$tmp/err" | head -5 >&2
      failed=1
      best=FAIL
      return
    fi
    if [ -n "$expected" ] && ! cmp -s "$tmp/out" "$expected"; then
      echo "compare.sh: output differs from native: $*" >&2
      diff "$expected" "$tmp/out" | head -5 | sed 's/^/  | /' >&2
      failed=1
      best=DIFF
      return
    fi
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    if [ -z "$best" ] || awk -v d="$dt" -v b="$best" 'BEGIN { exit !(d < b) }'; then
      best=$dt
    fi
  done
}

# cell SECONDS [NATIVE_SECONDS]: "1.234 s (12.3x)", or "0.012 s" without a native time
cell() {
  case "$1" in
    FAIL|DIFF|-) echo "$1" ;;
    *) awk -v t="$1" -v n="${2:-0}" \
         'BEGIN { printf "%.3f s", t; if (n > 0) printf " (%.1fx)", t / n }' ;;
  esac
}

echo "| guest | native x86_64 | qemu-x86_64 | qemu-aarch64 | mmemu x86_64 | mmemu arm64 |"
echo "| --- | --- | --- | --- | --- | --- |"

row() {
  local label="$1" name="$2"
  shift 2
  local x86="$guests/x86_64/$name" arm="$guests/arm64/$name"
  local expected="$tmp/$name.native"
  # The native run's output is the reference for every other column.
  if ! "$x86" "$@" </dev/null >"$expected" 2>"$tmp/err"; then
    echo "compare.sh: the native run of $name failed" >&2
    failed=1
  fi
  local native qx="-" qa="-" mx ma
  best_time "$expected" "$x86" "$@"
  native=$best
  if [ -n "$qemu_x86" ]; then
    best_time "$expected" "$qemu_x86" "$x86" "$@"
    qx=$best
  fi
  if [ -n "$qemu_arm" ]; then
    best_time "$expected" "$qemu_arm" "$arm" "$@"
    qa=$best
  fi
  best_time "$expected" "$mmemu" run "$x86" "$@"
  mx=$best
  best_time "$expected" "$mmemu" run "$arm" "$@"
  ma=$best
  local n="$native"
  case "$n" in FAIL|DIFF) n=0 ;; esac
  echo "| $label | $(cell "$native") | $(cell "$qx" "$n") | $(cell "$qa" "$n") |" \
       "$(cell "$mx" "$n") | $(cell "$ma" "$n") |"
}

row "compute loop ($compute_n iterations)" compute "$compute_n"
row "demand-fault $fault_mib MiB" fault256 "$fault_mib"
row "fork+exit+wait x$forks" forkloop "$forks"

echo
echo "best of $runs runs, wall clock; (Nx) = time / native time; host: $(uname -m)," \
     "$(nproc) CPUs; mmemu vs plain Unicorn on the compute loop: run bench_emu"
exit $failed
