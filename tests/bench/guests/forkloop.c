/* forkloop: N (argv[1], default 500) iterations of fork, _exit in the child with a code
 * derived from the iteration, waitpid in the parent; prints how many codes came back. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 500;
  int matched = 0;
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(i & 0x7f);
    if (pid < 0) {
      perror("forkloop: fork");
      return 2;
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) {
      perror("forkloop: waitpid");
      return 2;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == (i & 0x7f)) matched++;
  }
  printf("forkloop: %d children, %d exit codes matched\n", n, matched);
  return matched == n ? 0 : 1;
}
