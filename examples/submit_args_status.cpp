// submit_args_status: submit() with arguments, two tasks at once, and polling done() for a
// status table before reading each result or exception.
//
// The Python program it ports:
//
//   from time import sleep
//   from concurrent.futures import ThreadPoolExecutor
//
//   def slow_add(nsecs, x, y):
//       sleep(nsecs)
//       return x + y
//
//   def slow_diff(nsecs, x, y):
//       sleep(nsecs)
//       return x - y
//
//   def slow_fail(nsecs):
//       sleep(nsecs)
//       raise ValueError('something went wrong')
//
//   with ThreadPoolExecutor(3) as executor:
//       future = executor.submit(slow_add, 1, 4, 9)
//       print(f'Result is {future.result()}')
//
//       future1 = executor.submit(slow_add, 1, 4, 9)
//       future2 = executor.submit(slow_add, 1, 2, 3)
//       print(f'Result one is {future1.result()}')
//       print(f'Result two is {future2.result()}')
//
//       futures = [executor.submit(slow_add, 0.6, 4, 9),
//                  executor.submit(slow_diff, 0.9, 8, 3),
//                  executor.submit(slow_fail, 0.3)]
//       while not all(f.done() for f in futures):
//           for i, f in enumerate(futures):
//               print(f'Task {i} has finished' if f.done() else f'Task {i} is running...')
//           print()
//           sleep(0.2)
//       for i, f in enumerate(futures):
//           if f.exception() is None:
//               print(f'Task {i} was successful. Result is {f.result()}')
//           else:
//               print(f'Task {i} failed!')
//               print(f'Error: {f.exception()}')
//
// Differences: the sleeps are a third as long (1 s -> 0.33 s), so the run takes about
// 1.3 s; the two tasks submitted together finish in about one task's time (2 workers
// busy at once). --seed N is accepted for a uniform interface (nothing here is random).
//
// Usage: submit_args_status [--seed N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pypool/pypool.hpp>

namespace {

using Seconds = std::chrono::duration<double>;
constexpr double scale = 1.0 / 3.0;

int slow_add(double nsecs, int x, int y) {
    std::this_thread::sleep_for(Seconds(nsecs * scale));
    return x + y;
}

int slow_diff(double nsecs, int x, int y) {
    std::this_thread::sleep_for(Seconds(nsecs * scale));
    return x - y;
}

int slow_fail(double nsecs) {
    std::this_thread::sleep_for(Seconds(nsecs * scale));
    throw std::invalid_argument("something went wrong");  // Python's ValueError
}

}  // namespace

int main() {
    pypool::ThreadPool executor(3);
    auto future = executor.submit(slow_add, 1, 4, 9);
    std::printf("Result is %d\n", future.result());

    auto future1 = executor.submit(slow_add, 1, 4, 9);
    auto future2 = executor.submit(slow_add, 1, 2, 3);
    std::printf("Result one is %d\n", future1.result());
    std::printf("Result two is %d\n", future2.result());

    std::vector<pypool::Future<int>> futures{executor.submit(slow_add, 0.6, 4, 9),
                                             executor.submit(slow_diff, 0.9, 8, 3),
                                             executor.submit(slow_fail, 0.3)};
    auto all_done = [&] {
        return std::all_of(futures.begin(), futures.end(), [](const auto& f) { return f.done(); });
    };
    while (!all_done()) {
        for (std::size_t i = 0; i < futures.size(); ++i) {
            if (futures[i].done())
                std::printf("Task %zu has finished\n", i);
            else
                std::printf("Task %zu is running...\n", i);
        }
        std::printf("\n");
        std::this_thread::sleep_for(Seconds(0.2 * scale));
    }
    for (std::size_t i = 0; i < futures.size(); ++i) {
        if (!futures[i].exception()) {
            std::printf("Task %zu was successful. Result is %d\n", i, futures[i].result());
        } else {
            std::printf("Task %zu failed!\n", i);
            std::printf("Error: %s\n", pypool::what(futures[i].exception()).c_str());
        }
    }
    executor.shutdown();
}
