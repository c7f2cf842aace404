/* hello: the smallest libc guest. printf through stdio (flushed at exit), exit status 0. */
#include <stdio.h>

int main(void) {
  printf("hello, world\n");
  return 0;
}
