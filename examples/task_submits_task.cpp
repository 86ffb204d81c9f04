// task_submits_task: a task submits another task to its own pool without waiting for it,
// with the pool passed by reference or reachable as a global.
//
// The Python program it ports:
//
//   import sys
//   from time import sleep
//   from concurrent.futures import ThreadPoolExecutor
//
//   def task2():
//       print('>>Task 2 is running', flush=True)
//       sleep(1)
//       print('>>Task 2 is done.', flush=True)
//
//   def task1(executor):
//       print('>Task 1 is running', flush=True)
//       executor.submit(task2)          # no waiting on it
//       sleep(0.5)
//       print('>Task 1 is done.', flush=True)
//
//   def task1_global():
//       global executor
//       print('>Task 1 is running', flush=True)
//       executor.submit(task2)
//       sleep(0.5)
//       print('>Task 1 is done.', flush=True)
//
//   if '--global' in sys.argv:
//       executor = ThreadPoolExecutor(2)
//       executor.submit(task1_global).result()   # keep the pool open until task1 submitted
//       executor.shutdown()
//   else:
//       with ThreadPoolExecutor(2) as executor:
//           executor.submit(task1, executor).result()
//
// Prints, in this order: ">Task 1 is running", ">>Task 2 is running", ">Task 1 is done.",
// ">>Task 2 is done.". Sleeps are 0.2 s and 0.4 s here. In Python the .result() calls
// are needed: without them the with block shuts the executor down first and task1's
// submit fails (silently, inside its future). pypool accepts submissions from inside the
// pool after shutdown(), so here they would not be needed; the port keeps them.
//
// --deterministic replaces the sleeps by latches that force the order above (the output
// test uses it; with sleeps the order is only very likely). --seed N is accepted for a
// uniform interface (nothing here is random).
//
// Usage: task_submits_task [--global] [--deterministic] [--seed N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <latch>
#include <optional>
#include <thread>

#include <pypool/pypool.hpp>

namespace {

bool deterministic = false;
std::latch task2_running(1);  // --deterministic: task1 says done only after task2 runs
std::latch task1_done(1);     // --deterministic: task2 says done only after task1 did

void say(const char* line) {
    std::puts(line);
    std::fflush(stdout);
}

void task2() {
    say(">>Task 2 is running");
    if (deterministic) {
        task2_running.count_down();
        task1_done.wait();
    } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    say(">>Task 2 is done.");
}

void finish_task1() {
    if (deterministic)
        task2_running.wait();
    else
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    say(">Task 1 is done.");
    if (deterministic) task1_done.count_down();
}

void task1(pypool::ThreadPool& executor) {
    say(">Task 1 is running");
    executor.submit(task2);  // no waiting on it
    finish_task1();
}

std::optional<pypool::ThreadPool> executor;  // Python's module-level `executor`

void task1_global() {
    say(">Task 1 is running");
    executor->submit(task2);
    finish_task1();
}

}  // namespace

int main(int argc, char** argv) {
    bool global = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--global") == 0) global = true;
        if (std::strcmp(argv[i], "--deterministic") == 0) deterministic = true;
    }
    if (global) {
        executor.emplace(2);
        executor->submit(task1_global).result();
        executor->shutdown();
        executor.reset();
    } else {
        pypool::ThreadPool pool(2);
        pool.submit(task1, std::ref(pool)).result();
        pool.shutdown();  // the end of the with block
    }
}
