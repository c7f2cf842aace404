/* tlbtouch: TLB pressure. Writes one word in every page of MIB MiB (argv[1], default 64)
 * of private anonymous memory, then reads one word per page PASSES times (argv[2],
 * default 8), in address order; prints the sum. Far more pages than TLB entries, so every
 * pass refills the whole buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  unsigned long mib = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
  unsigned long passes = argc > 2 ? strtoul(argv[2], 0, 10) : 8;
  size_t pages = (mib << 20) / 4096;
  volatile uint64_t* p =
      mmap(0, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("tlbtouch: mmap");
    return 2;
  }
  for (size_t i = 0; i < pages; i++)
    p[i * 512] = i;
  uint64_t sum = 0;
  for (unsigned long k = 0; k < passes; k++)
    for (size_t i = 0; i < pages; i++)
      sum += p[i * 512];
  munmap((void*)p, mib << 20);
  printf("tlbtouch: %lu MiB, %lu passes, sum %llu\n", mib, passes, (unsigned long long)sum);
  return 0;
}
