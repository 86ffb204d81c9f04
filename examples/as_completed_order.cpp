// as_completed_order: results printed in the order the tasks finish, with an optional
// timeout on waiting for them.
//
// The Python program it ports:
//
//   import sys
//   from time import sleep
//   from random import random, seed
//   from concurrent.futures import ThreadPoolExecutor, as_completed, TimeoutError
//
//   def task(name):
//       value = random()
//       sleep(value)
//       return f'Task={name}: {value:.2f}'
//
//   seed(int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else None)
//   timeout = float(sys.argv[sys.argv.index('--timeout') + 1]) if '--timeout' in sys.argv else None
//   with ThreadPoolExecutor(10) as executor:
//       futures = [executor.submit(task, i) for i in range(10)]
//       try:
//           for future in as_completed(futures, timeout=timeout):
//               print(future.result())
//       except TimeoutError:
//           print('Timed out waiting for a result')
//
// Differences: each task draws its value in the main thread before it is submitted (so a
// seed fixes which task gets which value; Python draws inside the tasks), sleeps are
// value x 1 s, and the numbers come from std::mt19937_64. Without --timeout, the lines
// come in increasing order of value. With a --timeout (seconds) shorter than every task,
// the only line is "Timed out waiting for a result".
//
// Usage: as_completed_order [--seed N] [--timeout SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

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
    unsigned long long seed = std::random_device{}();
    std::optional<double> timeout;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 10);
        if (std::strcmp(argv[i], "--timeout") == 0) timeout = std::strtod(argv[i + 1], nullptr);
    }
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> random(0.0, 1.0);

    pypool::ThreadPool executor(10);
    std::vector<pypool::Future<std::string>> futures;
    for (int i = 0; i < 10; ++i) futures.push_back(executor.submit(task, i, random(rng)));
    try {
        auto completed = timeout ? pypool::as_completed(futures, std::chrono::duration<double>(*timeout))
                                 : pypool::as_completed(futures);
        for (auto& future : completed) std::puts(future.result().c_str());
    } catch (const pypool::TimeoutError&) {
        std::puts("Timed out waiting for a result");
    }
}
