/* fault256: demand-faults 256 MiB (MiB from argv[1]) of private anonymous memory by
 * writing one byte per page, unmaps it and prints the page count. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  unsigned long mib = argc > 1 ? strtoul(argv[1], 0, 10) : 256;
  size_t len = mib << 20;
  volatile char* p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("fault256: mmap");
    return 2;
  }
  unsigned long pages = 0;
  for (size_t off = 0; off < len; off += 4096) {
    p[off] = 1;
    pages++;
  }
  if (munmap((void*)p, len) != 0) {
    perror("fault256: munmap");
    return 2;
  }
  printf("fault256: %lu MiB, %lu pages written\n", mib, pages);
  return 0;
}
