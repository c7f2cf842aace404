/* smc: self-modifying code through the page tables.
 * - machine code written into an anonymous RW page, mprotected R+X, called; the page made
 *   RW again, overwritten with different code, made R+X, called again: the new code runs;
 * - an RWX mapping rewritten while executable, the function called after each rewrite
 *   (many rounds, and a second function in the same page that must stay intact);
 * - executing the page while it is only RW faults (SIGSEGV) and leaves no stale code.
 * Output is the functions' results only (the same on both architectures). */
#include "guest.h"

/* Calls p(0); "ok", or the fault it raised ("SEGV_ACCERR"...). */
static const char* probe_call(void* p) {
  g_probe_install();
  if (sigsetjmp(g_probe_jmp, 1) == 0) {
    g_probe_armed = 1;
    g_call(p, 0);
    g_probe_armed = 0;
    return "ok";
  }
  if (g_probe_addr != p) return "fault with a wrong si_addr";
  return g_probe_code_name(g_probe_sig, g_probe_code);
}

int main(void) {
  /* RW -> R+X -> RW -> R+X. */
  char* page = map_anon(1);
  g_emit_add(page, 1000);
  CHECK(mprotect(page, G_PAGE, PROT_READ | PROT_EXEC) == 0);
  expect_long("first code", g_call(page, 42), 1042);
  CHECK(mprotect(page, G_PAGE, PROT_READ | PROT_WRITE) == 0);
  expect_str("calling the page while RW", probe_call(page), "SEGV_ACCERR");
  g_emit_add(page, 2000);
  CHECK(mprotect(page, G_PAGE, PROT_READ | PROT_EXEC) == 0);
  expect_long("second code", g_call(page, 42), 2042);
  expect_str("write to the R+X page", probe_write(page, 0), "SEGV_ACCERR");
  expect_long("code intact after the refused write", g_call(page, 1), 2001);
  CHECK(munmap(page, G_PAGE) == 0);

  /* RWX: rewritten while executable. */
  char* rwx = mmap(NULL, G_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  CHECK(rwx != MAP_FAILED);
  g_emit_add(rwx + 2048, 7); /* a neighbour in the same page */
  g_emit_add(rwx, 1);
  expect_long("rwx first", g_call(rwx, 100), 101);
  g_emit_add(rwx, 3);
  expect_long("rwx rewritten", g_call(rwx, 100), 103);
  long sum = 0;
  for (unsigned i = 0; i < 200; i++) {
    g_emit_add(rwx, i);
    sum += g_call(rwx, 1) + g_call(rwx + 2048, 0);
  }
  expect_long("rwx 200 rewrites, sum of results", sum, 200 + 19900 + 200 * 7);
  expect_long("neighbour intact", g_call(rwx + 2048, 5), 12);

  /* Rewrite one byte of the immediate only (a store inside an instruction). */
  g_emit_add(rwx, 10);
#if defined(__x86_64__)
  rwx[3] = 20;
  __builtin___clear_cache(rwx, rwx + 8);
#else
  {
    uint32_t insn;
    memcpy(&insn, rwx, 4);
    insn = (insn & ~(0xfffu << 10)) | (20u << 10);
    memcpy(rwx, &insn, 4);
    __builtin___clear_cache(rwx, rwx + 4);
  }
#endif
  expect_long("immediate patched in place", g_call(rwx, 0), 20);

  /* A private RWX page after fork: the child's rewrite is its own (copy-on-write). */
  g_emit_add(rwx, 30);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    g_emit_add(rwx, 40);
    _exit(g_call(rwx, 0) == 40 ? 0 : 1);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  expect_str("child ran its own rewrite", wstatus_str(st), "exited 0");
  expect_long("parent's code unchanged by the child", g_call(rwx, 0), 30);
  CHECK(munmap(rwx, G_PAGE) == 0);

  /* The same address mapped again: new contents, new code. */
  char* again = mmap(rwx, G_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(again == rwx);
  g_emit_add(again, 50);
  expect_long("remapped page runs its new code", g_call(again, 0), 50);
  return g_finish();
}
