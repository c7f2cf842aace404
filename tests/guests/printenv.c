/* printenv: its environment, one entry a line, in order (the reference run's is empty).
 * `mmemu run --env` and `--clear-env` are tested with it. */
#include "guest.h"

extern char** environ;

int main(void) {
  for (char** e = environ; *e; ++e)
    say("%s", *e);
  return 0;
}
