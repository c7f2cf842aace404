/* The compute loop shared by `compute` (static glibc) and `compute_nolibc` (no libc, for
 * the plain-Unicorn comparison): the same C compiled with the same -O2, so both binaries
 * run the same loop. Per iteration: a 64-bit LCG step, one load, one store and one more
 * load on a 16 KiB buffer, a few ALU operations (about 10 instructions in all). */
#pragma once

#include <stdint.h>

#define COMPUTE_BUF_WORDS 4096u /* 16 KiB: stays in L1 natively */
#define COMPUTE_DEFAULT_ITERATIONS 10000000ULL

static uint32_t compute_buf[COMPUTE_BUF_WORDS];
/* The LCG's seed, in .data: it also gives the no-libc build's RW segment file bytes (a
 * PT_LOAD with p_filesz 0 and p_offset past the end of the file is what ld makes for
 * arm64 otherwise; Linux accepts that, mmemu's loader did not). */
uint64_t compute_seed = 0x9e3779b97f4a7c15ULL;

__attribute__((noinline)) static uint64_t compute_loop(uint64_t iterations) {
  uint64_t x = compute_seed, sum = 0;
  for (uint64_t i = 0; i < iterations; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t idx = (uint32_t)(x >> 52); /* 12 bits: an index into the buffer */
    uint32_t v = compute_buf[idx] + (uint32_t)(x >> 20);
    compute_buf[idx] = v;
    sum += v ^ compute_buf[(idx + 1) & (COMPUTE_BUF_WORDS - 1)];
    sum = (sum << 1) | (sum >> 63);
  }
  return sum;
}

/* Decimal digits of argv[1] (no sign, no spaces); def if absent or not a number. */
static uint64_t compute_parse(const char* s, uint64_t def) {
  if (!s || !*s) return def;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return def;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  return v;
}
