// process_crash_isolation: what threads cannot do. A task that segfaults on some inputs and a
// task that never returns run on a pool of worker processes: each fails alone (the crash with
// BrokenProcessPool, the endless one killed by task_timeout with TimeoutError), a task that
// throws comes back with its exception, and the pool finishes everything else.
//
// The Python program it ports (examples/python/process_crash_isolation.py, runnable), and
// what Python does with it:
//
//   import ctypes
//   from concurrent.futures import ProcessPoolExecutor
//   from concurrent.futures.process import BrokenProcessPool
//
//   def risky(x):
//       if x % 7 == 3:
//           ctypes.string_at(0)  # reads address 0: SIGSEGV
//       if x == 12:
//           raise ValueError('x must not be 12')
//       return x * x
//
//   if __name__ == '__main__':
//       ok = crashed = raised = 0
//       with ProcessPoolExecutor(2) as executor:
//           futures = [executor.submit(risky, x) for x in range(20)]
//           for x, future in enumerate(futures):
//               try:
//                   print(f'risky({x}) = {future.result()}')
//                   ok += 1
//               except BrokenProcessPool as e:
//                   print(f'risky({x}) failed: BrokenProcessPool: {e}')
//                   crashed += 1
//               except ValueError as e:
//                   print(f'risky({x}) failed: ValueError: {e}')
//                   raised += 1
//       print(f'finished: {ok} succeeded, {crashed} crashed, {raised} raised')
//
// Python's first crash breaks the executor: every task still pending fails with
// BrokenProcessPool ("finished: 3 succeeded, 17 crashed, 0 raised" or so, by timing), and
// the pool takes no more work. Python has no task timeout, so a task that never returns
// would keep its with block waiting forever; it is left out of the Python program. Here only
// risky(3), risky(10) and risky(17) crash, risky(12) raises, never_returns() is killed after
// task_timeout (1 s), and the rest succeed, always:
// "finished: 16 succeeded, 3 crashed, 1 raised, 1 timed out".
//
// Usage: process_crash_isolation
#include <csignal>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

namespace {

int risky(int x) {
    if (x % 7 == 3) {
        std::signal(SIGSEGV, SIG_DFL);  // a plain crash, also under a sanitizer
        volatile int* address_zero = nullptr;
        return *address_zero;  // SIGSEGV
    }
    if (x == 12) throw std::invalid_argument("x must not be 12");  // Python's ValueError
    return x * x;
}

int never_returns() {
    volatile unsigned long long n = 0;
    for (;;) n = n + 1;
}

}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPoolOptions options;
    options.processes = 2;
    options.task_timeout = std::chrono::seconds(1);
    pypool::ProcessPool executor(options);

    auto stuck = executor.submit(never_returns);
    std::vector<pypool::Future<int>> futures;
    for (int x = 0; x < 20; ++x) futures.push_back(executor.submit(risky, x));

    int ok = 0, crashed = 0, raised = 0, timed_out = 0;
    for (int x = 0; x < 20; ++x) {
        try {
            std::printf("risky(%d) = %d\n", x, futures[static_cast<std::size_t>(x)].result());
            ++ok;
        } catch (const pypool::BrokenProcessPool& e) {
            std::printf("risky(%d) failed: BrokenProcessPool: %s\n", x, e.what());
            ++crashed;
        } catch (const std::invalid_argument& e) {
            std::printf("risky(%d) failed: invalid_argument: %s\n", x, e.what());
            ++raised;
        }
    }
    try {
        stuck.result();
    } catch (const pypool::TimeoutError& e) {
        std::printf("never_returns() failed: TimeoutError: %s\n", e.what());
        ++timed_out;
    }
    std::printf("finished: %d succeeded, %d crashed, %d raised, %d timed out\n", ok, crashed, raised,
                timed_out);
    executor.shutdown();
}
