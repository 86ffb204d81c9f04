// progress_bar: a live progress bar over imap_unordered, as tqdm draws one.
//
// The Python program it ports (multiprocessing.pool.ThreadPool; a hand-drawn bar in the
// style of `for _ in tqdm(pool.imap_unordered(task, items), total=len(items))`):
//
//   import sys
//   from random import Random
//   from time import sleep, monotonic
//   from multiprocessing.pool import ThreadPool
//
//   SEED = int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else None
//   TOTAL = 300
//
//   def task(i):
//       value = Random(None if SEED is None else f'{SEED}/{i}').random()
//       sleep(value * 0.026)
//       return value
//
//   def draw(done, elapsed):
//       rate = done / elapsed if elapsed > 0 else 0.0
//       left = (TOTAL - done) / rate if rate > 0 else 0.0
//       filled = 30 * done // TOTAL
//       bar = '#' * filled + '.' * (30 - filled)
//       print(f'\r[{bar}] {done}/{TOTAL} {100 * done // TOTAL:3d}% '
//             f'{rate:.0f} items/s, {left:.1f} s left ', end='', flush=True)
//
//   if __name__ == '__main__':
//       live = sys.stdout.isatty()
//       start = last = monotonic()
//       done = 0
//       with ThreadPool(4) as pool:
//           for _ in pool.imap_unordered(task, range(TOTAL)):
//               done += 1
//               now = monotonic()
//               if live and (now - last >= 0.1 or done == TOTAL):
//                   draw(done, now - start)
//                   last = now
//       elapsed = monotonic() - start
//       if live:
//           print()
//       print(f'{done}/{TOTAL} items in {elapsed:.1f} s ({done / elapsed:.0f} items/s)')
//
// Output: on a terminal, one line redrawn in place with '\r' at most every 0.1 s (as tqdm's
// mininterval): "[#####.........] done/total  pct% rate items/s, T s left", then a
// newline and the summary; when stdout is not a terminal (a pipe, a file), only the
// summary "300/300 items in 0.9 s (330 items/s)". Each item sleeps value x 26 ms, the value
// coming from a generator seeded with (seed, i) (std::mt19937_64, so not Python's values):
// a seed fixes the work, about a second on 4 workers; the times printed follow the clock.
//
// Usage: progress_bar [--seed N]
#include <unistd.h>

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

#include <pypool/pypool.hpp>

namespace {

constexpr int total = 300;
constexpr double sleep_scale = 0.026;  // seconds of sleep per unit of value
constexpr double min_interval = 0.1;   // seconds between redraws (tqdm's mininterval)
constexpr int bar_width = 30;

using Clock = std::chrono::steady_clock;

std::optional<std::uint64_t> seed;  // set once by main, before any task runs

// Python's Random(f'{seed}/{i}').random(): a value in [0, 1) that depends only on
// (seed, i) (or is fresh each run without --seed). 53 random bits, like Python's.
double random_for(int i) {
    std::uint64_t s = seed ? *seed : std::random_device{}();
    std::seed_seq seq{static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(s >> 32),
                      static_cast<std::uint32_t>(i)};
    std::mt19937_64 gen(seq);
    return static_cast<double>(gen() >> 11) * 0x1.0p-53;
}

double task(int i) {
    const double value = random_for(i);
    std::this_thread::sleep_for(std::chrono::duration<double>(value * sleep_scale));
    return value;
}

void draw(int done, double elapsed) {
    const double rate = elapsed > 0 ? done / elapsed : 0.0;
    const double left = rate > 0 ? (total - done) / rate : 0.0;
    const int filled = bar_width * done / total;
    const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                            std::string(static_cast<std::size_t>(bar_width - filled), '.');
    std::printf("\r[%s] %d/%d %3d%% %.0f items/s, %.1f s left ", bar.c_str(), done, total,
                100 * done / total, rate, left);
    std::fflush(stdout);
}

std::optional<std::uint64_t> parse_seed(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--seed") == 0) return std::strtoull(argv[i + 1], nullptr, 10);
    return std::nullopt;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
    seed = parse_seed(argc, argv);
    const bool live = isatty(fileno(stdout)) != 0;
    const auto start = Clock::now();
    auto last = start;
    int done = 0;
    {
        pypool::ThreadPool pool(4);
        for ([[maybe_unused]] double value :
             pool.imap_unordered(task, std::views::iota(0, total))) {
            ++done;
            const auto now = Clock::now();
            if (live && (seconds(now - last) >= min_interval || done == total)) {
                draw(done, seconds(now - start));
                last = now;
            }
        }
    }
    const double elapsed = seconds(Clock::now() - start);
    if (live) std::printf("\n");
    std::printf("%d/%d items in %.1f s (%.0f items/s)\n", done, total, elapsed, done / elapsed);
}
