/* unix_socket: AF_UNIX sockets between processes.
 * - socketpair of each type: stream bytes merge, datagram and seqpacket keep boundaries
 *   (MSG_TRUNC), MSG_PEEK, MSG_DONTWAIT (EAGAIN), SOCK_CLOEXEC|SOCK_NONBLOCK flags;
 * - shutdown(SHUT_WR) is the peer's EOF; after close: stream/seqpacket read EOF and send
 *   EPIPE (SIGPIPE unless MSG_NOSIGNAL), datagram send ECONNREFUSED; poll revents;
 * - getsockopt SO_TYPE, SO_ERROR, SO_PEERCRED, SO_ACCEPTCONN, SO_DOMAIN; setsockopt
 *   SO_SNDBUF doubling, SO_LINGER, SO_RCVLOWAT; unknown options ENOPROTOOPT, other levels
 *   EOPNOTSUPP;
 * - bind to a path (a socket file: stat S_ISSOCK, EADDRINUSE twice, unlink), listen,
 *   connect from a child, accept4, getsockname/getpeername, ECONNREFUSED without a
 *   listener, ENOENT for a missing path, a full backlog's EAGAIN; abstract names and
 *   autobind; unconnected datagrams with sendto/recvfrom addresses;
 * - SCM_RIGHTS passes a pipe end to another process, SCM_CREDENTIALS with SO_PASSCRED,
 *   MSG_CTRUNC when the control buffer is too small;
 * - a 1 MiB transfer from a child through a blocking stream, MSG_WAITALL. */
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "guest.h"

static volatile int sigpipes;
static void on_pipe(int sig) {
  (void)sig;
  sigpipes++;
}

static const char* type_name(int t) {
  return t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : "seqpacket";
}

static void pairs(void) {
  int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
  char label[96], buf[64];
  for (int i = 0; i < 3; ++i) {
    int t = types[i], sv[2];
    const char* n = type_name(t);
    CHECK(socketpair(AF_UNIX, t, 0, sv) == 0);
    CHECK(send(sv[0], "abc", 3, 0) == 3);
    CHECK(send(sv[0], "defgh", 5, 0) == 5);
    snprintf(label, sizeof label, "%s peek", n);
    expect_long(label, recv(sv[1], buf, sizeof buf, MSG_PEEK), t == SOCK_STREAM ? 8 : 3);
    snprintf(label, sizeof label, "%s recv 2 of first", n);
    long r = recv(sv[1], buf, 2, 0);
    expect_long(label, r, 2);
    snprintf(label, sizeof label, "%s recv rest", n);
    r = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
    buf[r > 0 ? r : 0] = 0;
    expect_str(label, buf, t == SOCK_STREAM ? "cdefgh" : "defgh");
    snprintf(label, sizeof label, "%s empty", n);
    expect_str(label, rc_str(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)), "EAGAIN");
    if (t != SOCK_STREAM) {
      CHECK(send(sv[0], "0123456789", 10, 0) == 10);
      snprintf(label, sizeof label, "%s MSG_TRUNC returns", n);
      expect_long(label, recv(sv[1], buf, 4, MSG_TRUNC), 10);
      struct iovec iov = {buf, 4};
      struct msghdr m = {0};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      CHECK(send(sv[0], "0123456789", 10, 0) == 10);
      r = recvmsg(sv[1], &m, 0);
      snprintf(label, sizeof label, "%s recvmsg truncated", n);
      expect_yes(label, r == 4 && (m.msg_flags & MSG_TRUNC));
    }
    /* The peer's half-close (a datagram socket does not pass it on: shut our reading). */
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    if (t == SOCK_DGRAM) CHECK(shutdown(sv[1], SHUT_RD) == 0);
    snprintf(label, sizeof label, "%s after SHUT_WR", n);
    expect_long(label, recv(sv[1], buf, sizeof buf, 0), 0);
    snprintf(label, sizeof label, "%s send after SHUT_WR", n);
    expect_str(label, rc_str(send(sv[0], "x", 1, MSG_NOSIGNAL)), "EPIPE");
    close(sv[0]);
    close(sv[1]);

    CHECK(socketpair(AF_UNIX, t, 0, sv) == 0);
    CHECK(send(sv[0], "zz", 2, 0) == 2);
    close(sv[0]);
    struct pollfd p = {sv[1], POLLIN | POLLOUT | POLLRDHUP, 0};
    snprintf(label, sizeof label, "%s poll after close", n);
    CHECK(poll(&p, 1, 0) == 1);
    expect_long(label, p.revents, t == SOCK_DGRAM ? (POLLIN | POLLOUT) : (POLLIN | POLLOUT |
                                                     POLLHUP | POLLRDHUP));
    snprintf(label, sizeof label, "%s queued data survives", n);
    expect_long(label, recv(sv[1], buf, sizeof buf, 0), 2);
    snprintf(label, sizeof label, "%s read after close", n);
    expect_str(label, rc_str(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)),
               t == SOCK_DGRAM ? "EAGAIN" : "ok");
    int before = sigpipes;
    snprintf(label, sizeof label, "%s send after close", n);
    expect_str(label, rc_str(send(sv[1], "x", 1, MSG_NOSIGNAL)),
               t == SOCK_DGRAM ? "ECONNREFUSED" : "EPIPE");
    snprintf(label, sizeof label, "%s MSG_NOSIGNAL: no SIGPIPE", n);
    expect_long(label, sigpipes - before, 0);
    if (t == SOCK_STREAM) {
      expect_str("stream write after close", rc_str(write(sv[1], "x", 1)), "EPIPE");
      expect_long("stream SIGPIPE", sigpipes - before, 1);
    } else {
      /* No SIGPIPE for messages; a refused datagram socket lost its peer. */
      snprintf(label, sizeof label, "%s send again", n);
      expect_str(label, rc_str(send(sv[1], "x", 1, 0)),
                 t == SOCK_DGRAM ? "ENOTCONN" : "EPIPE");
      snprintf(label, sizeof label, "%s no SIGPIPE", n);
      expect_long(label, sigpipes - before, 0);
    }
    /* Our own SHUT_WR is looked at first. */
    CHECK(shutdown(sv[1], SHUT_WR) == 0);
    snprintf(label, sizeof label, "%s send after own SHUT_WR", n);
    expect_str(label, rc_str(send(sv[1], "x", 1, MSG_NOSIGNAL)), "EPIPE");
    close(sv[1]);
  }

  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
  expect_long("SOCK_CLOEXEC", fcntl(sv[0], F_GETFD), FD_CLOEXEC);
  expect_long("SOCK_NONBLOCK", fcntl(sv[1], F_GETFL), O_RDWR | O_NONBLOCK);
  expect_str("nonblocking read", rc_str(read(sv[0], buf, 1)), "EAGAIN");
  struct stat st;
  CHECK(fstat(sv[0], &st) == 0);
  expect_yes("fstat S_ISSOCK", S_ISSOCK(st.st_mode));
  int v = 0;
  socklen_t l = sizeof v;
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l) == 0);
  expect_long("SO_TYPE", v, SOCK_STREAM);
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &l) == 0);
  expect_long("SO_DOMAIN", v, AF_UNIX);
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &l) == 0);
  expect_long("SO_ERROR", v, 0);
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0);
  expect_long("SO_ACCEPTCONN", v, 0);
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l) == 0);
  expect_yes("SO_SNDBUF positive", v > 0);
  v = 6000;
  CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0);
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l) == 0);
  expect_long("SO_SNDBUF doubled", v, 12000);
  l = 2;
  v = 0;
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l) == 0);
  expect_long("short optlen", l, 2);
  struct ucred uc;
  l = sizeof uc;
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0);
  expect_yes("SO_PEERCRED", l == sizeof uc && uc.pid == getpid() && uc.uid == geteuid() &&
                                uc.gid == getegid());
  l = sizeof v;
  expect_str("unknown option", rc_str(getsockopt(sv[0], SOL_SOCKET, 9999, &v, &l)),
             "ENOPROTOOPT");
  expect_str("other level", rc_str(setsockopt(sv[0], 6, 1, &v, sizeof v)), "EOPNOTSUPP");
  expect_str("short setsockopt", rc_str(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, 2)),
             "EINVAL");
  struct linger lg = {1, 5};
  CHECK(setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  memset(&lg, 0, sizeof lg);
  l = sizeof lg;
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, &l) == 0);
  expect_yes("SO_LINGER kept", lg.l_onoff == 1 && lg.l_linger == 5 && l == sizeof lg);
  v = 3;
  CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0);
  CHECK(send(sv[0], "ab", 2, 0) == 2);
  expect_long("SO_RCVLOWAT nonblocking short read", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), 2);
  expect_str("SO_SNDLOWAT is read-only",
             rc_str(setsockopt(sv[0], SOL_SOCKET, SO_SNDLOWAT, &v, sizeof v)), "ENOPROTOOPT");
  expect_str("shutdown bad how", rc_str(shutdown(sv[0], 7)), "EINVAL");
  expect_str("accept on a pair", rc_str(accept(sv[0], NULL, NULL)), "EINVAL");
  expect_str("listen on a pair", rc_str(listen(sv[0], 1)), "EINVAL");
  expect_str("ENOTSOCK", rc_str(accept(1, NULL, NULL)), "ENOTSOCK");
  expect_str("bad type", rc_str(socket(AF_UNIX, 9, 0)), "ESOCKTNOSUPPORT");
  expect_str("bad protocol", rc_str(socket(AF_UNIX, SOCK_STREAM, 2)), "EPROTONOSUPPORT");
  expect_str("bad flags", rc_str(socket(AF_UNIX, SOCK_STREAM | 0x100, 0)), "EINVAL");
  expect_str("bad family", rc_str(socket(999, SOCK_STREAM, 0)), "EAFNOSUPPORT");
  close(sv[0]);
  close(sv[1]);
}

static void set_addr(struct sockaddr_un* a, const char* path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strcpy(a->sun_path, path);
}

static void named(void) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/tmp/mmemu-unix-socket.%d", (int)getpid());
  unlink(path);
  struct sockaddr_un a, got;
  set_addr(&a, path);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(c >= 0);
  expect_str("connect to missing path", rc_str(connect(c, (void*)&a, sizeof a)), "ENOENT");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(s >= 0);
  expect_str("listen unbound", rc_str(listen(s, 4)), "EINVAL");
  CHECK(bind(s, (void*)&a, sizeof a) == 0);
  struct stat st;
  CHECK(stat(path, &st) == 0);
  expect_yes("bound name is a socket", S_ISSOCK(st.st_mode));
  int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
  expect_str("bind taken name", rc_str(bind(s2, (void*)&a, sizeof a)), "EADDRINUSE");
  expect_str("connect before listen", rc_str(connect(c, (void*)&a, sizeof a)), "ECONNREFUSED");
  socklen_t l = sizeof got;
  CHECK(getsockname(s, (void*)&got, &l) == 0);
  expect_yes("getsockname path",
             l == offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1 &&
                 strcmp(got.sun_path, path) == 0);
  CHECK(listen(s, 4) == 0);
  int v = 0;
  l = sizeof v;
  CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0);
  expect_long("SO_ACCEPTCONN listening", v, 1);
  struct pollfd p = {s, POLLIN, 0};
  expect_long("listener idle poll", poll(&p, 1, 0), 0);

  pid_t kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) {
    int k = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(k, (void*)&a, sizeof a) != 0) _exit(3);
    struct ucred uc;
    socklen_t ul = sizeof uc;
    if (getsockopt(k, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0) _exit(4);
    if (uc.pid != getppid()) _exit(5);
    if (write(k, "hello from child", 16) != 16) _exit(6);
    char b[8];
    if (read(k, b, 4) != 4 || memcmp(b, "ack!", 4) != 0) _exit(7);
    _exit(0);
  }
  l = sizeof got;
  int conn = accept4(s, (void*)&got, &l, SOCK_CLOEXEC);
  CHECK(conn >= 0);
  expect_long("accepted peer address length (unbound client)", l, 2);
  expect_long("accept4 SOCK_CLOEXEC", fcntl(conn, F_GETFD), FD_CLOEXEC);
  struct ucred uc;
  l = sizeof uc;
  CHECK(getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0);
  expect_yes("accepted SO_PEERCRED is the child", uc.pid == kid);
  l = sizeof got;
  CHECK(getsockname(conn, (void*)&got, &l) == 0);
  expect_yes("accepted socket's name is the listener's", strcmp(got.sun_path, path) == 0);
  long r = recv(conn, buf, 16, MSG_WAITALL);
  buf[r > 0 ? r : 0] = 0;
  expect_str("from child", buf, "hello from child");
  CHECK(write(conn, "ack!", 4) == 4);
  int st2 = 0;
  CHECK(waitpid(kid, &st2, 0) == kid);
  expect_str("child", wstatus_str(st2), "exited 0");
  expect_long("EOF after child exit", read(conn, buf, sizeof buf), 0);
  close(conn);

  /* A backlog of 0 holds one connection; the next nonblocking connect is EAGAIN. */
  CHECK(listen(s, 0) == 0);
  int n1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int n2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  expect_str("connect into backlog 0", rc_str(connect(n1, (void*)&a, sizeof a)), "ok");
  /* The full backlog is looked at before the caller's own state. */
  expect_str("connect again", rc_str(connect(n1, (void*)&a, sizeof a)), "EAGAIN");
  expect_str("backlog full", rc_str(connect(n2, (void*)&a, sizeof a)), "EAGAIN");
  p.revents = 0;
  expect_long("listener poll with a pending connection", poll(&p, 1, 0), 1);
  /* The listener goes with a connection unaccepted: the client sees a reset. */
  close(s);
  expect_str("unaccepted connection after listener close",
             rc_str(recv(n1, buf, sizeof buf, MSG_DONTWAIT)), "ECONNRESET");
  expect_long("then EOF", recv(n1, buf, sizeof buf, MSG_DONTWAIT), 0);
  expect_str("connect to a dead listener", rc_str(connect(n2, (void*)&a, sizeof a)),
             "ECONNREFUSED");
  close(n1);
  close(n2);
  close(s2);
  close(c);
  CHECK(unlink(path) == 0);
  expect_str("unlinked name", rc_str(stat(path, &st)), "ENOENT");

  /* Abstract names. */
  struct sockaddr_un ab;
  memset(&ab, 0, sizeof ab);
  ab.sun_family = AF_UNIX;
  snprintf(ab.sun_path + 1, sizeof ab.sun_path - 1, "mmemu-test-%d", (int)getpid());
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                               strlen(ab.sun_path + 1));
  int d1 = socket(AF_UNIX, SOCK_DGRAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK(bind(d1, (void*)&ab, alen) == 0);
  expect_str("abstract name taken", rc_str(bind(d2, (void*)&ab, alen)), "EADDRINUSE");
  l = sizeof got;
  CHECK(getsockname(d1, (void*)&got, &l) == 0);
  expect_yes("abstract getsockname", l == alen && memcmp(&got, &ab, alen) == 0);
  expect_str("unconnected dgram send", rc_str(send(d2, "x", 1, 0)), "ENOTCONN");
  CHECK(sendto(d2, "anon", 4, 0, (void*)&ab, alen) == 4);
  l = sizeof got;
  r = recvfrom(d1, buf, sizeof buf, 0, (void*)&got, &l);
  expect_yes("recvfrom an unbound sender", r == 4 && l == 0);
  CHECK(bind(d2, (void*)&got, sizeof(sa_family_t)) == 0); /* autobind */
  l = sizeof got;
  CHECK(getsockname(d2, (void*)&got, &l) == 0);
  expect_yes("autobind name", l == 8 && got.sun_path[0] == 0);
  struct sockaddr_un d2name = got;
  socklen_t d2len = l;
  CHECK(sendto(d2, "named", 5, 0, (void*)&ab, alen) == 5);
  l = sizeof got;
  r = recvfrom(d1, buf, sizeof buf, 0, (void*)&got, &l);
  expect_yes("recvfrom an autobound sender",
             r == 5 && l == d2len && memcmp(&got, &d2name, l) == 0);
  CHECK(connect(d1, (void*)&d2name, d2len) == 0);
  int d3 = socket(AF_UNIX, SOCK_DGRAM, 0);
  expect_str("send to a socket connected elsewhere",
             rc_str(sendto(d3, "x", 1, 0, (void*)&ab, alen)), "EPERM");
  struct sockaddr unspec = {AF_UNSPEC, {0}};
  CHECK(connect(d1, &unspec, sizeof unspec) == 0);
  expect_str("after AF_UNSPEC", rc_str(sendto(d3, "x", 1, 0, (void*)&ab, alen)), "ok");
  l = sizeof got;
  expect_yes("from an unbound socket", recvfrom(d1, buf, sizeof buf, 0, (void*)&got, &l) == 1 &&
                                           l == 0);
  /* With SO_PASSCRED the sender gets a name on its first send. */
  int one = 1;
  CHECK(setsockopt(d3, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0);
  CHECK(sendto(d3, "y", 1, 0, (void*)&ab, alen) == 1);
  l = sizeof got;
  expect_yes("SO_PASSCRED sender autobound",
             recvfrom(d1, buf, sizeof buf, 0, (void*)&got, &l) == 1 && l == 8 &&
                 got.sun_path[0] == 0);
  close(d1);
  close(d2);
  close(d3);
  expect_str("abstract connect, no one bound",
             rc_str(connect(c = socket(AF_UNIX, SOCK_STREAM, 0), (void*)&ab, alen)),
             "ECONNREFUSED");
  close(c);
}

static void rights(void) {
  int sv[2], pp[2];
  char buf[64];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  pid_t kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) {
    close(sv[0]);
    char b[8];
    struct iovec iov = {b, sizeof b};
    union {
      char c[CMSG_SPACE(sizeof(int))];
      struct cmsghdr h;
    } u;
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.c;
    m.msg_controllen = sizeof u.c;
    if (recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC) != 1) _exit(3);
    struct cmsghdr* h = CMSG_FIRSTHDR(&m);
    if (!h || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(sizeof(int))) _exit(4);
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof fd);
    if (fcntl(fd, F_GETFD) != FD_CLOEXEC) _exit(5);
    long n = read(fd, b, sizeof b);
    if (n != 6 || memcmp(b, "secret", 6) != 0) _exit(6);
    _exit(0);
  }
  close(sv[1]);
  CHECK(pipe(pp) == 0);
  CHECK(write(pp[1], "secret", 6) == 6);
  close(pp[1]);
  union {
    char c[CMSG_SPACE(sizeof(int))];
    struct cmsghdr h;
  } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = {"F", 1};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.c;
  m.msg_controllen = sizeof u.c;
  struct cmsghdr* h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(h), &pp[0], sizeof(int));
  expect_long("sendmsg with SCM_RIGHTS", sendmsg(sv[0], &m, 0), 1);
  close(pp[0]);
  int st = 0;
  CHECK(waitpid(kid, &st, 0) == kid);
  expect_str("child read through the passed pipe", wstatus_str(st), "exited 0");
  close(sv[0]);

  /* A bad descriptor in SCM_RIGHTS; a control buffer with no room for it. */
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
  int bad = 999;
  memcpy(CMSG_DATA(h), &bad, sizeof bad);
  expect_str("SCM_RIGHTS bad fd", rc_str(sendmsg(sv[0], &m, 0)), "EBADF");
  memcpy(CMSG_DATA(h), &sv[0], sizeof(int));
  CHECK(sendmsg(sv[0], &m, 0) == 1);
  struct iovec riov = {buf, sizeof buf};
  struct msghdr rm = {0};
  rm.msg_iov = &riov;
  rm.msg_iovlen = 1;
  expect_long("recvmsg without control buffer", recvmsg(sv[1], &rm, 0), 1);
  expect_yes("MSG_CTRUNC", (rm.msg_flags & MSG_CTRUNC) != 0);

  /* SCM_CREDENTIALS: the sender's pid and ids when SO_PASSCRED is on. */
  int on = 1;
  CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
  CHECK(send(sv[0], "c", 1, 0) == 1);
  union {
    char c[CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr h;
  } cu;
  rm.msg_control = cu.c;
  rm.msg_controllen = sizeof cu.c;
  rm.msg_flags = 0;
  expect_long("recvmsg with SO_PASSCRED", recvmsg(sv[1], &rm, 0), 1);
  struct cmsghdr* ch = CMSG_FIRSTHDR(&rm);
  struct ucred uc;
  int ok = ch && ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_CREDENTIALS;
  if (ok) memcpy(&uc, CMSG_DATA(ch), sizeof uc);
  expect_yes("SCM_CREDENTIALS", ok && uc.pid == getpid() && uc.uid == getuid() &&
                                    uc.gid == getgid());
  close(sv[0]);
  close(sv[1]);
}

static void bulk(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  enum { kTotal = 1 << 20 };
  pid_t kid = fork();
  CHECK(kid >= 0);
  if (kid == 0) {
    close(sv[0]);
    static unsigned char b[kTotal];
    for (int i = 0; i < kTotal; ++i)
      b[i] = (unsigned char)(i * 7 + (i >> 9));
    if (write(sv[1], b, kTotal) != kTotal) _exit(3);
    _exit(0);
  }
  close(sv[1]);
  static unsigned char got[kTotal];
  long total = 0;
  while (total < kTotal) {
    long n = read(sv[0], got + total, 5000);
    if (n <= 0) break;
    total += n;
  }
  int same = 1;
  for (int i = 0; i < kTotal; ++i)
    if (got[i] != (unsigned char)(i * 7 + (i >> 9))) same = 0;
  expect_long("bulk bytes", total, kTotal);
  expect_yes("bulk content", same);
  int st = 0;
  CHECK(waitpid(kid, &st, 0) == kid);
  expect_str("bulk writer", wstatus_str(st), "exited 0");
  close(sv[0]);
}

int main(void) {
  signal(SIGPIPE, on_pipe);
  pairs();
  named();
  rights();
  bulk();
  return g_finish();
}
