// `mmemu sweep`'s worker processes (sweep_worker.hpp).
#include "tools/sweep_worker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace mmemu::sweep {

namespace {

using Clock = std::chrono::steady_clock;

struct Running {
  std::size_t job;
  pid_t pid;
  Clock::time_point start;
};

// Starts the job; -1 when fork fails. An exec failure shows as exit status 127.
pid_t start(const WorkerJob& job) {
  std::vector<char*> argv;
  for (const std::string& a : job.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0) {
    if (pid > 0) ::setpgid(pid, pid);  // both sides: no window where the kill misses it
    return pid;
  }
  ::setpgid(0, 0);
  const int in = ::open("/dev/null", O_RDONLY);
  const int out = ::open(job.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int err = ::open(job.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (in < 0 || out < 0 || err < 0) ::_exit(127);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

WorkerResult result_of(int status, bool timed_out, Clock::time_point begun) {
  WorkerResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - begun).count();
  r.timed_out = timed_out;
  if (timed_out) return r;
  if (WIFSIGNALED(status)) {
    r.signaled = true;
    r.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  }
  return r;
}

}  // namespace

WorkerResult run_worker(const WorkerJob& job, double timeout_seconds) {
  WorkerResult out;
  run_pool(
      1, 1, timeout_seconds, [&job](std::size_t) { return job; },
      [&out](std::size_t, const WorkerResult& r) { out = r; });
  return out;
}

void run_pool(std::size_t n, unsigned parallel, double timeout_seconds,
              const std::function<WorkerJob(std::size_t)>& make,
              const std::function<void(std::size_t, const WorkerResult&)>& done) {
  if (parallel == 0) parallel = 1;
  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
  std::vector<Running> running;
  std::size_t next = 0;
  while (next < n || !running.empty()) {
    while (next < n && running.size() < parallel) {
      const std::size_t i = next++;
      const auto begun = Clock::now();
      const pid_t pid = start(make(i));
      if (pid < 0) {
        WorkerResult r;
        r.spawn_failed = true;
        done(i, r);
        continue;
      }
      running.push_back({i, pid, begun});
    }
    bool any = false;
    for (std::size_t k = 0; k < running.size();) {
      const Running w = running[k];
      int status = 0;
      pid_t got = ::waitpid(w.pid, &status, WNOHANG);
      bool timed_out = false;
      if (got == 0 && Clock::now() - w.start > timeout) {
        ::kill(-w.pid, SIGKILL);
        got = ::waitpid(w.pid, &status, 0);
        timed_out = true;
      }
      if (got == 0) {
        ++k;
        continue;
      }
      any = true;
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
      WorkerResult r = result_of(status, timed_out, w.start);
      if (got < 0) r.spawn_failed = true;  // nobody to wait for: cannot tell how it ended
      done(w.job, r);
    }
    if (!any && !running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace mmemu::sweep
