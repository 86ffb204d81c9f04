// futures_followup: submit a follow-up task for each finished task whose result is large.
//
// The Python program it ports (concurrent.futures; same structure, same output shape):
//
//   import sys
//   from random import random, seed
//   from time import sleep
//   from concurrent.futures import ThreadPoolExecutor, as_completed
//
//   def task1():
//       value = random()
//       sleep(value)
//       print(f'Task 1: {value}', flush=True)
//       return value
//
//   def task2(value1):
//       value2 = random()
//       sleep(value2)
//       print(f'Task 2: value1={value1}, value2={value2}', flush=True)
//       return value2
//
//   seed(int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else None)
//   with ThreadPoolExecutor(5) as executor:
//       futures1 = [executor.submit(task1) for _ in range(10)]
//       for future in as_completed(futures1):
//           result = future.result()
//           if result > 0.5:
//               executor.submit(task2, result)
//
// Differences: sleeps are value x 0.5 s (so it runs in about a second), and the random
// numbers come from std::mt19937_64, so a seed gives other values than Python's. Each task
// draws from its own generator seeded with (seed, round, i): one shared generator would hand
// out values in whatever order the workers ask, which follows timing. With one seed the values
// printed are always the same; the order of the lines follows the sleeps.
//
// Usage: futures_followup [--seed N]
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <pypool/pypool.hpp>

namespace {

constexpr double sleep_scale = 0.5;  // seconds of sleep per unit of value

unsigned long long g_seed = 0;

// A value in [0, 1) that depends only on (seed, round, i), never on timing.
double random01(unsigned round, unsigned i) {
    std::seed_seq seq{static_cast<unsigned>(g_seed), static_cast<unsigned>(g_seed >> 32), round, i};
    std::mt19937_64 gen(seq);
    return static_cast<double>(gen() >> 11) * 0x1.0p-53;  // 53 random bits, as Python's random()
}

void sleep_for(double value) {
    std::this_thread::sleep_for(std::chrono::duration<double>(value * sleep_scale));
}

// Python's repr of a float: the shortest text that reads back the same.
std::string repr(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

double task1(int i) {
    const double value = random01(1, static_cast<unsigned>(i));
    sleep_for(value);
    std::printf("Task 1: %s\n", repr(value).c_str());
    std::fflush(stdout);
    return value;
}

double task2(int i, double value1) {
    const double value2 = random01(2, static_cast<unsigned>(i));
    sleep_for(value2);
    std::printf("Task 2: value1=%s, value2=%s\n", repr(value1).c_str(), repr(value2).c_str());
    std::fflush(stdout);
    return value2;
}

}  // namespace

int main(int argc, char** argv) {
    unsigned long long seed = std::random_device{}();
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 10);
    g_seed = seed;

    pypool::ThreadPool executor(5);
    std::vector<pypool::Future<double>> futures1;
    for (int i = 0; i < 10; ++i) futures1.push_back(executor.submit(task1, i));
    for (auto& future : pypool::as_completed(futures1)) {
        const double result = future.result();
        const auto i = static_cast<int>(
            std::find(futures1.begin(), futures1.end(), future) - futures1.begin());
        if (result > 0.5) executor.submit(task2, i, result);
    }
    executor.shutdown();  // the end of Python's with block: wait for the follow-ups
}
