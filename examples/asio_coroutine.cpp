// asio_coroutine: a coroutine on an io_context fans work out to a pool and gathers it.
//
// The Python program it ports (asyncio + run_in_executor; same formula, same output):
//
//   import asyncio, sys
//   from concurrent.futures import ThreadPoolExecutor
//
//   def work(i, seed):
//       n = 1000 + (seed * 7919 + i * 104729) % 4000
//       return sum(k * k for k in range(n)) % 1000
//
//   def fail():
//       raise ValueError("bad input")
//
//   async def main(seed, tasks=8):
//       loop = asyncio.get_running_loop()
//       with ThreadPoolExecutor(4) as pool:
//           print(f"seed {seed}: {tasks} tasks on 4 workers")
//           futs = [loop.run_in_executor(pool, work, i, seed) for i in range(tasks)]
//           results = await asyncio.gather(*futs)
//           for i, v in enumerate(results):
//               print(f"task {i} -> {v}")
//           print(f"gathered {len(results)} results, total {sum(results)}")
//           try:
//               await loop.run_in_executor(pool, fail)
//           except ValueError as e:
//               print(f"caught: {e}")
//
//   seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
//   asyncio.run(main(seed))
//
// Here the event loop is a boost::asio::io_context, run_in_executor is
// pypool::async_apply(pool, f, args, use_awaitable), and asyncio.gather is a small helper
// below: one child coroutine per task, and a timer the last child cancels.
//
// Usage: asio_coroutine [--seed N]
#include <utility>  // before Asio (see TOOLCHAIN.md)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <pypool/asio.hpp>
#include <pypool/pypool.hpp>

#if defined(BOOST_ASIO_HAS_CO_AWAIT)

namespace asio = boost::asio;

namespace {

long long work(long long i, long long seed) {
    const long long n = 1000 + (seed * 7919 + i * 104729) % 4000;
    long long s = 0;
    for (long long k = 0; k < n; ++k) s += k * k;
    return s % 1000;
}

int fail() { throw pypool::ValueError("bad input"); }

// asyncio.gather for `tasks` calls of work(i, seed) on the pool: all run at once, the
// results come back in input order. Everything here runs on the io_context's thread.
asio::awaitable<std::vector<long long>> gather(pypool::ThreadPool& pool, int tasks,
                                               long long seed) {
    auto ex = co_await asio::this_coro::executor;
    std::vector<long long> results(static_cast<std::size_t>(tasks));
    std::exception_ptr first_error;
    int remaining = tasks;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (int i = 0; i < tasks; ++i) {
        asio::co_spawn(
            ex,
            [&, i]() -> asio::awaitable<void> {
                results[static_cast<std::size_t>(i)] = co_await pypool::async_apply(
                    pool, work, std::tuple{static_cast<long long>(i), seed}, asio::use_awaitable);
            },
            [&](std::exception_ptr e) {
                if (e && !first_error) first_error = e;
                if (--remaining == 0) all_done.cancel();
            });
    }
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (first_error) std::rethrow_exception(first_error);
    co_return results;
}

asio::awaitable<void> amain(long long seed) {
    constexpr int tasks = 8;
    pypool::ThreadPool pool(4);
    std::printf("seed %lld: %d tasks on %zu workers\n", seed, tasks, pool.size());
    std::vector<long long> results = co_await gather(pool, tasks, seed);
    for (std::size_t i = 0; i < results.size(); ++i) std::printf("task %zu -> %lld\n", i, results[i]);
    std::printf("gathered %zu results, total %lld\n", results.size(),
                std::accumulate(results.begin(), results.end(), 0LL));
    try {
        co_await pypool::async_apply(pool, fail, std::tuple{}, asio::use_awaitable);
    } catch (const pypool::ValueError& e) {
        std::printf("caught: %s\n", e.what());
    }
    pool.close();  // the `with` block's end: nothing is queued any more, join() is quick
    pool.join();
}

}  // namespace

int main(int argc, char** argv) {
    long long seed = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--seed" && i + 1 < argc) {
            seed = std::atoll(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: %s [--seed N]\n", argv[0]);
            return 2;
        }
    }
    asio::io_context ioc;
    std::exception_ptr error;
    asio::co_spawn(ioc, amain(seed), [&](std::exception_ptr e) { error = e; });
    ioc.run();
    if (error) {
        std::fprintf(stderr, "error: %s\n", pypool::what(error).c_str());
        return 1;
    }
    return 0;
}

#else  // Boost.Asio sees no coroutine support (e.g. clang 14 with libstdc++)

int main() {
    std::fputs("asio_coroutine: this compiler gives Boost.Asio no C++20 coroutines\n", stderr);
    return 77;
}

#endif
