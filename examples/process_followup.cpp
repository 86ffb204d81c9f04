// process_followup: a callback submits a follow-up task for each result above one half, on
// a pool of worker processes (ProcessPoolExecutor's seed program).
//
// The Python program it ports (examples/python/process_followup.py, runnable):
//
//   import sys
//   import threading
//   from random import Random
//   from time import sleep
//   from concurrent.futures import ProcessPoolExecutor, wait
//
//   def task1(i, s):
//       value = Random(f'{s}-1-{i}').random()
//       sleep(value * 0.5)
//       print(f'Task 1: {value}', flush=True)
//       return value
//
//   def task2(i, value1, s):
//       value2 = Random(f'{s}-2-{i}').random()
//       sleep(value2 * 0.5)
//       print(f'Task 2: value1={value1}, value2={value2}', flush=True)
//       return value2
//
//   if __name__ == '__main__':
//       s = int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else Random().random()
//       callbacks_done = threading.Semaphore(0)
//       follow_ups = []
//       with ProcessPoolExecutor(5) as executor:
//           def on_done(future, i):
//               value = future.result()
//               if value > 0.5:
//                   follow_ups.append(executor.submit(task2, i, value, s))
//               callbacks_done.release()
//
//           futures1 = [executor.submit(task1, i, s) for i in range(10)]
//           for i, future in enumerate(futures1):
//               future.add_done_callback(lambda f, i=i: on_done(f, i))
//           for _ in futures1:  # every callback ran (so every follow-up was submitted)
//               callbacks_done.acquire()
//           wait(follow_ups)
//
// Differences: the tasks print from the worker processes as in Python; the callback is
// apply_async's, which runs on the pool's callback thread in this process before the result
// counts as ready, so no semaphore is needed: once every first-round result is ready, every
// follow-up has been submitted. The seed travels as an argument (a worker is another
// process: a global set in main would not be there), and the numbers come from
// std::mt19937_64 seeded with (seed, round, i), so they differ from Python's.
//
// Usage: process_followup [--seed N]
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

namespace {

// A value in [0, 1) that depends only on (seed, round, i), never on timing.
double random01(unsigned long long seed, unsigned round, unsigned i) {
    std::seed_seq seq{static_cast<unsigned>(seed), static_cast<unsigned>(seed >> 32), round, i};
    std::mt19937_64 gen(seq);
    return static_cast<double>(gen() >> 11) * 0x1.0p-53;
}

// Python's repr of a float: the shortest text that reads back the same.
std::string repr(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

double task1(int i, unsigned long long seed) {
    const double value = random01(seed, 1, static_cast<unsigned>(i));
    std::this_thread::sleep_for(std::chrono::duration<double>(value * 0.5));
    std::printf("Task 1: %s\n", repr(value).c_str());
    std::fflush(stdout);
    return value;
}

double task2(int i, double value1, unsigned long long seed) {
    const double value2 = random01(seed, 2, static_cast<unsigned>(i));
    std::this_thread::sleep_for(std::chrono::duration<double>(value2 * 0.5));
    std::printf("Task 2: value1=%s, value2=%s\n", repr(value1).c_str(), repr(value2).c_str());
    std::fflush(stdout);
    return value2;
}

}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);  // Python's `if __name__ == '__main__':`
    unsigned long long seed = std::random_device{}();
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 10);

    pypool::ProcessPool executor(5);
    std::vector<pypool::AsyncResult<double>> follow_ups;  // touched by callbacks only, read after
    std::vector<pypool::AsyncResult<double>> futures1;
    for (int i = 0; i < 10; ++i) {
        futures1.push_back(executor.apply_async(
            task1, std::tuple{i, seed}, {.callback = [&executor, &follow_ups, i, seed](const double& value) {
                if (value > 0.5) follow_ups.push_back(executor.submit(task2, i, value, seed));
            }}));
    }
    for (auto& f : futures1) f.wait();  // each callback has run: every follow-up is submitted
    for (auto& f : follow_ups) f.wait();
    executor.shutdown();
}
