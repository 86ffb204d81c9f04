// pypool-soak (issue 6): mixed load on one ThreadPool for a given time, printing resident
// memory and thread count once a second, so that a leak shows as a climbing line.
//
// usage: pypool-soak [--seconds N] [--processes P]
// Each batch: apply_async with callbacks (some issue follow-ups), submit + get, a tree of
// nested waits, map and imap_unordered when this build has them, and every 20th batch a
// short-lived second pool (thread leaks). Every result is checked; a wrong one ends the run
// with status 1. Output lines:
//   SOAK t=<s> rss_kb=<VmRSS> threads=<Threads> batches=<n> tasks=<n>
//   SOAK done ... rss_growth_kb=<last - first after warm-up>

#include <utility>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pypool/pypool.hpp>
#if __has_include(<pypool/map.hpp>)
#include <pypool/map.hpp>
#endif

#include "proc_status.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using i64 = std::int64_t;

std::atomic<i64> tasks_run{0};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "SOAK FAIL %s\n", what.c_str());
    std::exit(1);
}

i64 node(pypool::ThreadPool* pool, int d) {
    tasks_run.fetch_add(1, std::memory_order_relaxed);
    if (d <= 1) return 1;
    auto a = pool->apply_async(node, std::tuple{pool, d - 1});
    auto b = pool->submit(node, pool, d - 1);
    return a.get() + b.get() + 1;
}

template <class P, class F, class V>
concept HasMap = requires(P& p, F f, V& v) {
    { p.map(f, v) };
};
template <class P, class F, class V>
concept HasImapUnordered = requires(P& p, F f, V& v) {
    { p.imap_unordered(f, v, std::size_t{1}) };
};

// Pool is a template parameter so that map/imap are only checked where they exist.
template <class Pool>
void bulk(Pool& pool, const std::vector<i64>& in) {
    auto sq = [](i64 x) {
        tasks_run.fetch_add(1, std::memory_order_relaxed);
        return x * x;
    };
    i64 expect = 0;
    for (i64 x : in) expect += x * x;
    if constexpr (HasMap<Pool, decltype(sq), const std::vector<i64>>) {
        auto out = pool.map(sq, in);
        i64 sum = std::accumulate(out.begin(), out.end(), i64{0});
        if (sum != expect) fail("map sum");
    }
    if constexpr (HasImapUnordered<Pool, decltype(sq), const std::vector<i64>>) {
        i64 sum = 0;
        for (auto v : pool.imap_unordered(sq, in, std::size_t{7})) sum += v;
        if (sum != expect) fail("imap_unordered sum");
    }
}

void batch(pypool::ThreadPool& pool, const std::vector<i64>& in, std::uint64_t k) {
    constexpr int n = 500;
    // apply_async with callbacks; every other callback issues a follow-up.
    std::atomic<int> callbacks{0}, follow_ups{0};
    std::vector<pypool::AsyncResult<i64>> rs;
    std::vector<pypool::AsyncResult<void>> follows(n);
    rs.reserve(n);
    for (int i = 0; i < n; ++i) {
        rs.push_back(pool.apply_async(
            [](i64 x) {
                tasks_run.fetch_add(1, std::memory_order_relaxed);
                return x + 1;
            },
            std::tuple{static_cast<i64>(i)},
            {.callback =
                 [&, i](const i64& v) {
                     if (v != i + 1) fail("callback value");
                     callbacks.fetch_add(1, std::memory_order_relaxed);
                     if (i % 2 == 0) {
                         follows[static_cast<std::size_t>(i)] = pool.apply_async([&follow_ups] {
                             tasks_run.fetch_add(1, std::memory_order_relaxed);
                             follow_ups.fetch_add(1, std::memory_order_relaxed);
                         });
                     }
                 },
             .error_callback = [](std::exception_ptr) { fail("error_callback called"); }}));
    }
    // submit + get (futures vocabulary), with an occasional failing task.
    std::vector<pypool::Future<i64>> fs;
    fs.reserve(n);
    for (int i = 0; i < n; ++i) {
        fs.push_back(pool.submit(
            [](i64 x) -> i64 {
                tasks_run.fetch_add(1, std::memory_order_relaxed);
                if (x % 97 == 0) throw std::runtime_error("expected");
                return 2 * x;
            },
            static_cast<i64>(i)));
    }
    // nested waits on the workers.
    i64 tree = pool.apply(node, std::tuple{&pool, 7});
    if (tree != 127) fail("nested tree count");
    bulk(pool, in);

    for (int i = 0; i < n; ++i) {
        if (rs[static_cast<std::size_t>(i)].get() != i + 1) fail("apply_async value");
        try {
            i64 v = fs[static_cast<std::size_t>(i)].result();
            if (i % 97 == 0 || v != 2 * i) fail("submit value");
        } catch (const std::runtime_error& e) {
            if (i % 97 != 0 || std::string(e.what()) != "expected") fail("submit exception");
        }
    }
    if (callbacks.load() != n) fail("callback count");
    for (int i = 0; i < n; i += 2) follows[static_cast<std::size_t>(i)].get();
    if (follow_ups.load() != n / 2) fail("follow-up count");

    if (k % 20 == 0) {  // a short-lived pool: its threads must all go away
        pypool::ThreadPool tmp(2);
        auto r = tmp.apply_async([] { return 5; }, {}, {.callback = [](const int&) {}});
        tmp.close();
        tmp.join();
        if (r.get() != 5) fail("temporary pool");
    }
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 60;
    int processes = 2;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--processes" && i + 1 < argc) processes = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: pypool-soak [--seconds N] [--processes P]\n");
            return 2;
        }
    }
    std::vector<i64> in(2000);
    std::iota(in.begin(), in.end(), i64{0});

    pypool::ThreadPool pool(processes);
    auto start = Clock::now();
    auto next_print = start;
    std::int64_t first_rss = -1, last_rss = 0;
    std::uint64_t batches = 0;
    for (;;) {
        auto now = Clock::now();
        double t = std::chrono::duration<double>(now - start).count();
        if (now >= next_print) {
            last_rss = pypool_bench::rss_bytes() / 1024;
            if (first_rss < 0 && t >= 2.0) first_rss = last_rss;  // after warm-up
            std::printf("SOAK t=%.0f rss_kb=%lld threads=%lld batches=%llu tasks=%lld\n", t,
                        static_cast<long long>(last_rss), static_cast<long long>(pypool_bench::thread_count()),
                        static_cast<unsigned long long>(batches), static_cast<long long>(tasks_run.load()));
            std::fflush(stdout);
            next_print += std::chrono::seconds(1);
        }
        if (t >= seconds) break;
        batch(pool, in, ++batches);
    }
    pool.close();
    pool.join();
    std::printf("SOAK done seconds=%.0f batches=%llu tasks=%lld threads_after_join=%lld rss_growth_kb=%lld\n",
                seconds, static_cast<unsigned long long>(batches), static_cast<long long>(tasks_run.load()),
                static_cast<long long>(pypool_bench::thread_count()),
                static_cast<long long>(first_rss < 0 ? 0 : last_rss - first_rss));
    return 0;
}
