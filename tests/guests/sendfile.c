/* sendfile: in-kernel copies with sendfile and copy_file_range.
 * - sendfile from a regular file to a pipe, a socket and another file: without an offset
 *   pointer the input's position moves, with one the pointer does and the position stays;
 *   into a pipe only what fits moves; from /dev/zero; 0 at end of file and for count 0;
 * - a socket's bytes go into a pipe (but not into another socket: EINVAL);
 * - sendfile errors: EBADF for the wrong access modes, EINVAL from a pipe, for
 *   an O_APPEND output and a negative offset, ESPIPE for an offset on a pipe, EFAULT for a
 *   bad offset pointer, EPIPE (and SIGPIPE) into a pipe nobody reads;
 * - copy_file_range between files with and without offsets; EINVAL for flags, overlapping
 *   ranges of one file and non-regular files, EBADF for an O_APPEND output;
 * - splice file to pipe (with and without an offset), pipe to file, pipe to pipe; EINVAL
 *   without a pipe, for a pipe to itself and bad flags, ESPIPE for a pipe's offset, EAGAIN
 *   from an empty pipe with SPLICE_F_NONBLOCK, 0 at a pipe's EOF;
 * - tee copies a pipe's bytes to another pipe and leaves them in the first. */
#include <sys/sendfile.h>
#include <sys/socket.h>

#include "guest.h"

static volatile int sigpipes;
static void on_pipe(int sig) {
  (void)sig;
  sigpipes++;
}

enum { kSize = 200000 };
static unsigned char pattern[kSize];

static int same(const unsigned char* got, long off, long n) {
  return memcmp(got, pattern + off, (size_t)n) == 0;
}

int main(void) {
  signal(SIGPIPE, on_pipe);
  for (int i = 0; i < kSize; ++i)
    pattern[i] = (unsigned char)(i * 13 + (i >> 8));
  char path[64], path2[64];
  snprintf(path, sizeof path, "/tmp/mmemu-sendfile.%d", (int)getpid());
  snprintf(path2, sizeof path2, "/tmp/mmemu-sendfile2.%d", (int)getpid());
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(f >= 0);
  CHECK(write(f, pattern, kSize) == kSize);
  CHECK(lseek(f, 0, SEEK_SET) == 0);
  static unsigned char got[kSize];

  /* File to pipe: what fits in the pipe, the file position moves. */
  int pp[2];
  CHECK(pipe(pp) == 0);
  expect_long("file to empty pipe", sendfile(pp[1], f, NULL, kSize), 65536);
  expect_long("file position after", lseek(f, 0, SEEK_CUR), 65536);
  long n = read(pp[0], got, sizeof got);
  expect_yes("pipe content", n == 65536 && same(got, 0, n));
  off_t off = 1000;
  expect_long("with offset pointer", sendfile(pp[1], f, &off, 5000), 5000);
  expect_long("offset advanced", (long)off, 6000);
  expect_long("position unchanged", lseek(f, 0, SEEK_CUR), 65536);
  n = read(pp[0], got, sizeof got);
  expect_yes("offset content", n == 5000 && same(got, 1000, n));

  /* File to socket. */
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  off = 100;
  expect_long("file to socket", sendfile(sv[0], f, &off, 3000), 3000);
  long total = 0;
  while (total < 3000 && (n = read(sv[1], got + total, 3000 - (size_t)total)) > 0)
    total += n;
  expect_yes("socket content", total == 3000 && same(got, 100, 3000));

  /* File to file. */
  int g = open(path2, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(g >= 0);
  CHECK(lseek(f, 0, SEEK_SET) == 0);
  total = 0;
  while ((n = sendfile(g, f, NULL, kSize)) > 0)
    total += n;
  expect_long("file to file total", total, kSize);
  expect_long("then end of file", sendfile(g, f, NULL, 10), 0);
  expect_long("count 0", sendfile(g, f, NULL, 0), 0);
  CHECK(pread(g, got, kSize, 0) == kSize);
  expect_yes("file copy content", same(got, 0, kSize));

  /* From /dev/zero. */
  int z = open("/dev/zero", O_RDONLY);
  CHECK(z >= 0);
  expect_long("from /dev/zero", sendfile(pp[1], z, NULL, 100), 100);
  n = read(pp[0], got, sizeof got);
  expect_yes("zeros", n == 100 && got[0] == 0 && got[99] == 0);

  /* Errors. */
  int wo = open(path, O_WRONLY);
  int ro = open(path, O_RDONLY);
  int ap = open(path2, O_WRONLY | O_APPEND);
  CHECK(wo >= 0 && ro >= 0 && ap >= 0);
  expect_str("input not readable", rc_str(sendfile(pp[1], wo, NULL, 10)), "EBADF");
  expect_str("output not writable", rc_str(sendfile(ro, f, NULL, 10)), "EBADF");
  expect_str("closed input", rc_str(sendfile(pp[1], 999, NULL, 10)), "EBADF");
  expect_str("from a pipe", rc_str(sendfile(sv[0], pp[0], NULL, 10)), "EINVAL");
  expect_str("offset on a pipe", rc_str(sendfile(sv[0], pp[0], &off, 10)), "ESPIPE");
  CHECK(write(sv[0], "abc", 3) == 3);
  expect_str("socket to socket", rc_str(sendfile(sv[0], sv[1], NULL, 3)), "EINVAL");
  expect_long("socket to pipe", sendfile(pp[1], sv[1], NULL, 10), 3);
  n = read(pp[0], got, sizeof got);
  expect_yes("socket to pipe content", n == 3 && memcmp(got, "abc", 3) == 0);
  expect_str("O_APPEND output", rc_str(sendfile(ap, f, NULL, 10)), "EINVAL");
  off = -1;
  expect_str("negative offset", rc_str(sendfile(pp[1], f, &off, 10)), "EINVAL");
  expect_str("bad offset pointer", rc_str(sendfile(pp[1], f, (off_t*)8, 10)), "EFAULT");
  int dead[2];
  CHECK(pipe(dead) == 0);
  close(dead[0]);
  off = 0;
  expect_str("into a pipe nobody reads", rc_str(sendfile(dead[1], f, &off, 10)), "EPIPE");
  expect_long("SIGPIPE", sigpipes, 1);
  close(dead[1]);

  /* copy_file_range. */
  loff_t in_off = 10, out_off = 0;
  CHECK(ftruncate(g, 0) == 0);
  expect_long("copy_file_range with offsets",
              copy_file_range(f, &in_off, g, &out_off, 1000, 0), 1000);
  expect_yes("offsets advanced", in_off == 1010 && out_off == 1000);
  CHECK(pread(g, got, 1000, 0) == 1000);
  expect_yes("copy content", same(got, 10, 1000));
  CHECK(lseek(f, kSize - 50, SEEK_SET) == kSize - 50);
  CHECK(lseek(g, 0, SEEK_SET) == 0);
  expect_long("copy_file_range to the end", copy_file_range(f, NULL, g, NULL, 1000, 0), 50);
  expect_long("positions moved", lseek(g, 0, SEEK_CUR), 50);
  expect_long("at end of input", copy_file_range(f, NULL, g, NULL, 1000, 0), 0);
  expect_str("flags", rc_str(copy_file_range(f, NULL, g, NULL, 10, 1)), "EINVAL");
  in_off = 0;
  out_off = 10;
  expect_str("overlap in one file", rc_str(copy_file_range(f, &in_off, f, &out_off, 100, 0)),
             "EINVAL");
  expect_str("O_APPEND target", rc_str(copy_file_range(f, &in_off, ap, NULL, 10, 0)), "EBADF");
  expect_str("from a pipe", rc_str(copy_file_range(pp[0], NULL, g, NULL, 10, 0)), "EINVAL");
  expect_str("to a socket", rc_str(copy_file_range(f, &in_off, sv[0], NULL, 10, 0)), "EINVAL");

  /* splice: file to pipe, pipe to file, pipe to pipe. */
  loff_t so = 500;
  CHECK(lseek(f, 0, SEEK_SET) == 0);
  expect_long("splice file to pipe at an offset", splice(f, &so, pp[1], NULL, 300, 0), 300);
  expect_yes("splice offset advanced, position kept", so == 800 && lseek(f, 0, SEEK_CUR) == 0);
  expect_long("splice file to pipe", splice(f, NULL, pp[1], NULL, 200, 0), 200);
  expect_long("splice moved the position", lseek(f, 0, SEEK_CUR), 200);
  int q[2], t[2];
  CHECK(pipe(q) == 0);
  CHECK(pipe(t) == 0);
  expect_long("tee", tee(pp[0], t[1], 50, 0), 50);
  n = read(t[0], got, sizeof got);
  expect_yes("tee content", n == 50 && same(got, 500, 50));
  expect_str("tee from a file", rc_str(tee(f, t[1], 10, 0)), "EINVAL");
  expect_str("tee a pipe to itself", rc_str(tee(t[0], t[1], 10, 0)), "EINVAL");
  expect_str("tee from an empty pipe, nonblocking",
             rc_str(tee(t[0], q[1], 10, SPLICE_F_NONBLOCK)), "EAGAIN");
  close(t[0]);
  close(t[1]);
  expect_long("splice pipe to pipe", splice(pp[0], NULL, q[1], NULL, 100, 0), 100);
  CHECK(ftruncate(g, 0) == 0);
  CHECK(lseek(g, 0, SEEK_SET) == 0);
  total = 0;
  while (total < 400 && (n = splice(pp[0], NULL, g, NULL, 400, SPLICE_F_NONBLOCK)) > 0)
    total += n;
  expect_long("splice pipe to file", total, 400);
  CHECK(pread(g, got, 400, 0) == 400);
  expect_yes("spliced content", same(got, 600, 200) && same(got + 200, 0, 200));
  n = read(q[0], got, sizeof got);
  expect_yes("pipe to pipe content", n == 100 && same(got, 500, 100));
  expect_str("splice from an empty pipe, nonblocking",
             rc_str(splice(pp[0], NULL, g, NULL, 10, SPLICE_F_NONBLOCK)), "EAGAIN");
  expect_str("splice neither a pipe", rc_str(splice(f, NULL, g, NULL, 10, 0)), "EINVAL");
  expect_str("splice a pipe to itself", rc_str(splice(q[0], NULL, q[1], NULL, 10, 0)), "EINVAL");
  expect_str("splice offset on a pipe", rc_str(splice(pp[0], &so, g, NULL, 10, 0)), "ESPIPE");
  expect_str("splice bad flags", rc_str(splice(f, NULL, pp[1], NULL, 10, 0x100)), "EINVAL");
  expect_long("splice nothing", splice(f, NULL, pp[1], NULL, 0, 0), 0);
  close(q[1]);
  expect_long("splice from a pipe at EOF", splice(q[0], NULL, g, NULL, 10, 0), 0);
  close(q[0]);

  close(f);
  close(g);
  close(wo);
  close(ro);
  close(ap);
  close(z);
  unlink(path);
  unlink(path2);
  return g_finish();
}
