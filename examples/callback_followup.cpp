// callback_followup: the map_async callback issues a follow-up task for each large result.
//
// The Python program it ports (multiprocessing.pool.ThreadPool; same structure, same output
// shape; rng_for gives each task its own generator seeded from (seed, task, round)):
//
//   import sys
//   from random import Random
//   from time import sleep
//   from multiprocessing.pool import ThreadPool
//
//   SEED = int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else None
//
//   def rng_for(*key):
//       return Random(None if SEED is None else '/'.join(map(str, (SEED,) + key)))
//
//   def task1(i):
//       value = rng_for(i, 1).random()
//       sleep(value * 0.5)
//       return (i, value)
//
//   def task2(i, value):
//       value2 = rng_for(i, 2).random()
//       sleep(value2 * 0.5)
//       print(f'>>{i} with {value}, generated {value2}', flush=True)
//       return (i, value, value2)
//
//   def result_callback(result_list):
//       for i, v in result_list:
//           print(f'>{i} generated {v}', flush=True)
//           if v > 0.5:
//               pool.apply_async(task2, args=(i, v))
//
//   if __name__ == '__main__':
//       with ThreadPool(4) as pool:
//           result = pool.map_async(task1, range(10), callback=result_callback)
//           result.wait()
//           pool.close()
//           pool.join()
//       print('All done.')
//
// Output: ten lines ">i generated v" (i = 0..9, in input order: the callback gets the
// whole list), one line ">>i with v, generated w" per v > 0.5 (after its ">i" line), then
// "All done.". The follow-ups are issued by apply_async on the callback thread. As in the
// Python above, each task's values come from its own generator seeded with (seed, i,
// round) (not the tutorial's random.seed(seed) with one shared generator, whose values
// depend on timing), so a seed fixes every value. The generator is std::mt19937_64, so
// the values differ from Python's. Sleeps are value x 0.5 s (about a second in all).
//
// Usage: callback_followup [--seed N]
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <pypool/pypool.hpp>

namespace {

constexpr double sleep_scale = 0.5;  // seconds of sleep per unit of value

std::optional<std::uint64_t> seed;  // set once by main, before any task runs

// Python's Random(f'{seed}/{i}/{round}').random(): a value in [0, 1) that depends only on
// (seed, i, round) (or is fresh each run without --seed). 53 random bits, like Python's.
double random_for(int i, int round) {
    std::uint64_t s = seed ? *seed : std::random_device{}();
    std::seed_seq seq{static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(s >> 32),
                      static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(round)};
    std::mt19937_64 gen(seq);
    return static_cast<double>(gen() >> 11) * 0x1.0p-53;
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

std::pair<int, double> task1(int i) {
    const double value = random_for(i, 1);
    sleep_for(value);
    return {i, value};
}

std::tuple<int, double, double> task2(int i, double value) {
    const double value2 = random_for(i, 2);
    sleep_for(value2);
    std::printf(">>%d with %s, generated %s\n", i, repr(value).c_str(), repr(value2).c_str());
    std::fflush(stdout);
    return {i, value, value2};
}

std::optional<std::uint64_t> parse_seed(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--seed") == 0) return std::strtoull(argv[i + 1], nullptr, 10);
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    seed = parse_seed(argc, argv);
    {
        pypool::ThreadPool pool(4);
        // Runs on the pool's callback thread, once, with every (i, v) in input order.
        auto result_callback = [&pool](const std::vector<std::pair<int, double>>& result_list) {
            for (const auto& [i, v] : result_list) {
                std::printf(">%d generated %s\n", i, repr(v).c_str());
                std::fflush(stdout);
                if (v > 0.5) pool.apply_async(task2, std::tuple{i, v});
            }
        };
        auto result =
            pool.map_async(task1, std::views::iota(0, 10), {.callback = result_callback});
        result.wait();
        pool.close();
        pool.join();
    }
    std::printf("All done.\n");
}
