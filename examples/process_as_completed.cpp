// process_as_completed: results printed in the order the tasks finish in worker processes,
// until a timeout fires while some are still running (ProcessPoolExecutor's seed program).
//
// The Python program it ports (examples/python/process_as_completed.py, runnable):
//
//   import sys
//   from random import Random
//   from time import sleep
//   from concurrent.futures import ProcessPoolExecutor, as_completed, TimeoutError
//
//   def task(name, value):
//       sleep(value)
//       return f'Task={name}: {value:.2f}'
//
//   if __name__ == '__main__':
//       rng = Random(int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else None)
//       timeout = float(sys.argv[sys.argv.index('--timeout') + 1]) if '--timeout' in sys.argv else 0.5
//       with ProcessPoolExecutor(4) as executor:
//           futures = [executor.submit(task, i, rng.random()) for i in range(10)]
//           try:
//               for future in as_completed(futures, timeout=timeout):
//                   print(future.result(), flush=True)
//           except TimeoutError as e:
//               print(f'Timed out after {timeout} s: {e}', flush=True)
//
// Differences: the numbers come from std::mt19937_64, so a seed gives other values than
// Python's; the message of pypool's TimeoutError is Python's ("N (of M) futures
// unfinished"). As in Python's with block, the end of main waits for the unfinished tasks.
//
// Usage: process_as_completed [--seed N] [--timeout SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

namespace {

std::string task(int name, double value) {
    std::this_thread::sleep_for(std::chrono::duration<double>(value));
    char buf[64];
    std::snprintf(buf, sizeof buf, "Task=%d: %.2f", name, value);
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    unsigned long long seed = std::random_device{}();
    double timeout = 0.5;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 10);
        if (std::strcmp(argv[i], "--timeout") == 0) timeout = std::strtod(argv[i + 1], nullptr);
    }
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> random(0.0, 1.0);

    pypool::ProcessPool executor(4);
    std::vector<pypool::Future<std::string>> futures;
    for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(task, i, random(rng)));
    try {
        for (auto& future : pypool::as_completed(futures, std::chrono::duration<double>(timeout))) {
            std::puts(future.result().c_str());
            std::fflush(stdout);
        }
    } catch (const pypool::TimeoutError& e) {
        std::printf("Timed out after %g s: %s\n", timeout, e.what());
    }
}
