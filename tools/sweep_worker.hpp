// The worker processes of `mmemu sweep`: each case runs as a child process (this same
// binary, `run` or `script`), in its own process group, with its standard input from
// /dev/null and its output to files, killed (the whole group) when it outlives its
// timeout. A pool keeps up to -j of them running. Nothing here reads what they wrote.
// A worker that cannot be started is reported as such (spawn_failed), never thrown.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace mmemu::sweep {

struct WorkerJob {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  std::string stdout_path = "/dev/null";
  std::string stderr_path = "/dev/null";
};

struct WorkerResult {
  bool spawn_failed = false;
  bool timed_out = false;  // killed by the pool after the timeout
  bool signaled = false;   // died of a signal it was not sent by the pool
  int signal = 0;
  int exit_code = -1;  // when it exited
  double seconds = 0;
};

// Runs one job to its end (or its timeout).
WorkerResult run_worker(const WorkerJob& job, double timeout_seconds);

// Runs jobs 0..n-1 with at most `parallel` at once; `make(i)` builds job i when it starts,
// `done(i, result)` is called (on this thread) as each ends, in the order they end.
void run_pool(std::size_t n, unsigned parallel, double timeout_seconds,
              const std::function<WorkerJob(std::size_t)>& make,
              const std::function<void(std::size_t, const WorkerResult&)>& done);

}  // namespace mmemu::sweep
