/* compute: a pure compute loop with memory traffic on a small buffer (compute_loop.h),
 * ITERATIONS from argv[1] (default 10,000,000: about 1e8 simple operations); prints the
 * checksum. Static glibc; compute_nolibc runs the same loop without libc. */
#include <inttypes.h>
#include <stdio.h>

#include "compute_loop.h"

int main(int argc, char** argv) {
  uint64_t n = compute_parse(argc > 1 ? argv[1] : 0, COMPUTE_DEFAULT_ITERATIONS);
  uint64_t sum = compute_loop(n);
  printf("compute: iterations=%" PRIu64 " checksum=%016" PRIx64 "\n", n, sum);
  return 0;
}
