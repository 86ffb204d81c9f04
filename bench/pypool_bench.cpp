// pypool-bench: the workloads of issue 7 on pypool::ThreadPool(2), boost::asio::thread_pool(2)
// and (when built with oneTBB) tbb::task_arena(2), in one binary.
//
// Output: one line per workload x library x repetition,
//   RESULT <workload> <library> <metric> <value>
//   NOTE   <workload> <library> <text>            (a comparison that is not run, and why)
// plus '#' comment lines. scripts/bench aggregates the RESULT lines.
//
// Every pool is built and warmed up (100 no-op tasks) outside the timed regions.
// --smoke runs every workload tiny, checks the results (never timings) and, with
// --junit FILE, writes one JUnit <testcase> per workload.

#include <utility>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <malloc.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <pypool/pypool.hpp>
#if __has_include(<pypool/map.hpp>)
#include <pypool/map.hpp>
#define PYPOOL_BENCH_HAVE_MAP_HEADER 1
#endif
#if __has_include(<pypool/futures.hpp>)
#include <pypool/futures.hpp>
#define PYPOOL_BENCH_HAVE_FUTURES_HEADER 1
#endif

#ifdef PYPOOL_BENCH_HAVE_TBB
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#endif

#include "bench_common.hpp"
#include "proc_status.hpp"

using namespace pypool_bench;

namespace {

using i64 = std::int64_t;

// ---- warm-up --------------------------------------------------------------------------------

void warm(pypool::ThreadPool& pool) {
    std::vector<pypool::AsyncResult<void>> rs;
    for (int i = 0; i < 100; ++i) rs.push_back(pool.apply_async([] {}));
    for (auto& r : rs) r.get();
}

void warm(boost::asio::thread_pool& pool) {
    std::latch done(100);
    for (int i = 0; i < 100; ++i) boost::asio::post(pool, [&done] { done.count_down(); });
    done.wait();
}

#ifdef PYPOOL_BENCH_HAVE_TBB
// Two kinds of arena: "inside" arenas are entered by the main thread (execute), which takes
// one of the two slots and runs tasks while it waits, as TBB programs do; "outside" arenas
// reserve no slot for the main thread and are fed with enqueue (W3, W7), so two TBB workers
// serve them while the main thread waits or drains. global_control lets TBB have 2 workers
// on a 2-core machine (its default is hardware_concurrency - 1).
tbb::task_arena make_inside_arena() {
    tbb::task_arena arena(2);
    arena.initialize();
    arena.execute([] {
        tbb::task_group tg;
        for (int i = 0; i < 100; ++i) tg.run([] {});
        tg.wait();
    });
    return arena;
}
tbb::task_arena make_outside_arena() {
    tbb::task_arena arena(2, 0);
    arena.initialize();
    std::latch done(100);
    for (int i = 0; i < 100; ++i) arena.enqueue([&done] { done.count_down(); });
    done.wait();
    return arena;
}
#endif

// ---- W1 submit + get ------------------------------------------------------------------------

void w1_pypool(std::size_t n) {
    pypool::ThreadPool pool(2);
    warm(pool);
    std::vector<pypool::AsyncResult<i64>> rs;
    rs.reserve(n);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        rs.push_back(pool.apply_async([](i64 x) { return x * 2; }, std::tuple{static_cast<i64>(i)}));
    i64 sum = 0;
    for (auto& r : rs) sum += r.get();
    double t = seconds_since(t0);
    check(sum == static_cast<i64>(n) * static_cast<i64>(n - 1), "W1 sum");
    result("W1", "pypool", "rate", static_cast<double>(n) / t);
}

void w1_asio(std::size_t n) {
    boost::asio::thread_pool pool(2);
    warm(pool);
    std::vector<std::future<i64>> fs;
    fs.reserve(n);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        std::packaged_task<i64()> task([x = static_cast<i64>(i)] { return x * 2; });
        fs.push_back(task.get_future());
        boost::asio::post(pool, std::move(task));
    }
    i64 sum = 0;
    for (auto& f : fs) sum += f.get();
    double t = seconds_since(t0);
    pool.join();
    check(sum == static_cast<i64>(n) * static_cast<i64>(n - 1), "W1 sum");
    result("W1", "asio", "rate", static_cast<double>(n) / t);
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void w1_tbb(std::size_t n) {
    auto arena = make_inside_arena();
    std::vector<i64> res(n);
    double t = 0;
    arena.execute([&] {
        tbb::task_group tg;
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) tg.run([&res, i] { res[i] = static_cast<i64>(i) * 2; });
        tg.wait();
        t = seconds_since(t0);
    });
    i64 sum = std::accumulate(res.begin(), res.end(), i64{0});
    check(sum == static_cast<i64>(n) * static_cast<i64>(n - 1), "W1 sum");
    result("W1", "tbb", "rate", static_cast<double>(n) / t);
}
#endif

// ---- W2 fire and forget ---------------------------------------------------------------------

void w2_pypool(std::size_t n) {
    std::atomic<i64> counter{0};
    pypool::ThreadPool pool(2);
    warm(pool);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        pool.apply_async([&counter] { counter.fetch_add(1, std::memory_order_relaxed); });
    pool.close();
    pool.join();
    double t = seconds_since(t0);
    check(counter.load() == static_cast<i64>(n), "W2 count");
    result("W2", "pypool", "rate", static_cast<double>(n) / t);
}

void w2_asio(std::size_t n) {
    std::atomic<i64> counter{0};
    boost::asio::thread_pool pool(2);
    warm(pool);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        boost::asio::post(pool, [&counter] { counter.fetch_add(1, std::memory_order_relaxed); });
    pool.join();
    double t = seconds_since(t0);
    check(counter.load() == static_cast<i64>(n), "W2 count");
    result("W2", "asio", "rate", static_cast<double>(n) / t);
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void w2_tbb(std::size_t n) {
    std::atomic<i64> counter{0};
    auto arena = make_inside_arena();
    double t = 0;
    arena.execute([&] {
        tbb::task_group tg;
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i)
            tg.run([&counter] { counter.fetch_add(1, std::memory_order_relaxed); });
        tg.wait();
        t = seconds_since(t0);
    });
    check(counter.load() == static_cast<i64>(n), "W2 count");
    result("W2", "tbb", "rate", static_cast<double>(n) / t);
}
#endif

// ---- W3 round trip --------------------------------------------------------------------------

template <class RoundTrip>
void w3_run(const char* lib, std::size_t n, RoundTrip&& round_trip) {
    std::size_t warmup = cfg.smoke ? 20 : 2000;
    for (std::size_t i = 0; i < warmup; ++i) check(round_trip(static_cast<i64>(i)) == static_cast<i64>(i) + 1, "W3 value");
    std::vector<double> lat(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto t0 = Clock::now();
        i64 v = round_trip(static_cast<i64>(i));
        lat[i] = seconds_since(t0);
        check(v == static_cast<i64>(i) + 1, "W3 value");
    }
    report_latencies(lib, lat);
}

void w3_pypool(std::size_t n) {
    pypool::ThreadPool pool(2);
    warm(pool);
    w3_run("pypool", n, [&pool](i64 i) { return pool.apply([](i64 x) { return x + 1; }, std::tuple{i}); });
}

void w3_asio(std::size_t n) {
    boost::asio::thread_pool pool(2);
    warm(pool);
    w3_run("asio", n, [&pool](i64 i) {
        std::packaged_task<i64()> task([i] { return i + 1; });
        auto f = task.get_future();
        boost::asio::post(pool, std::move(task));
        return f.get();
    });
    pool.join();
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void w3_tbb(std::size_t n) {
    auto arena = make_outside_arena();
    w3_run("tbb", n, [&arena](i64 i) {
        std::promise<i64> p;
        auto f = p.get_future();
        arena.enqueue([&p, i] { p.set_value(i + 1); });
        return f.get();
    });
}
#endif

// ---- W4 map ----------------------------------------------------------------------------------

/// About 1 µs of dependent integer arithmetic (iterations calibrated at start-up).
std::atomic<int> spin_iters{500};

[[gnu::noinline]] i64 spin_work(i64 x) {
    std::uint64_t h = static_cast<std::uint64_t>(x);
    int iters = spin_iters.load(std::memory_order_relaxed);
    for (int k = 0; k < iters; ++k) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        h ^= h >> 29;
    }
    return static_cast<i64>(h >> 1);
}

void calibrate_spin() {
    if (cfg.smoke) {
        spin_iters = 20;
        return;
    }
    spin_iters = 1000;
    volatile i64 sink = 0;
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
        auto t0 = Clock::now();
        for (int i = 0; i < 2000; ++i) sink = sink + spin_work(i);
        best = std::min(best, seconds_since(t0) / 2000.0);
    }
    spin_iters = std::max(1, static_cast<int>(1000 * 1e-6 / best));
    std::printf("# W4b: spin_work calibrated to %d iterations for ~1 us\n", spin_iters.load());
}

/// One map workload: f over 0..n-1, `inner` runs per repetition (the fastest counts).
/// F is a stateless lambda, so the serial loop and every library call it directly.
template <class F>
struct MapCase {
    const char* name;  // W4a / W4b
    F f;
    std::size_t n;
    int inner;
};

std::vector<i64> iota_vec(std::size_t n) {
    std::vector<i64> v(n);
    std::iota(v.begin(), v.end(), i64{0});
    return v;
}

/// Serial reference: a plain loop into a fresh vector; fastest of `inner` runs.
template <class F>
double serial_time(const MapCase<F>& mc, const std::vector<i64>& in, std::vector<i64>& expect) {
    double best = 1e30;
    for (int r = 0; r < mc.inner; ++r) {
        auto t0 = Clock::now();
        std::vector<i64> out(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) out[i] = mc.f(in[i]);
        best = std::min(best, seconds_since(t0));
        expect = std::move(out);
    }
    return best;
}

template <class F, class Run>
void map_report(const MapCase<F>& mc, const char* lib, double serial, const std::vector<i64>& expect, Run&& run) {
    double best = 1e30;
    for (int r = 0; r < mc.inner; ++r) {
        auto t0 = Clock::now();
        std::vector<i64> out = run();
        best = std::min(best, seconds_since(t0));
        check(out == expect, std::string(mc.name) + " output differs from the serial loop");
    }
    result(mc.name, lib, "speedup", serial / best);
    result(mc.name, lib, "time_s", best);
}

template <class P, class F, class V>
concept HasMap = requires(P& p, F f, V& v) {
    { p.map(f, v) };
};

// Pool is a template parameter so that the map call is only checked where map exists.
template <class F, class Pool = pypool::ThreadPool>
void w4_pypool(const MapCase<F>& mc, double serial, const std::vector<i64>& in, const std::vector<i64>& expect) {
    if constexpr (HasMap<Pool, F, const std::vector<i64>>) {
        Pool pool(2);
        warm(pool);
        map_report(mc, "pypool", serial, expect, [&] { return std::vector<i64>(pool.map(mc.f, in)); });
    } else {
        (void)serial; (void)in; (void)expect;
        note(mc.name, "pypool", "map not available in this build");
    }
}

template <class F>
void w4_asio(const MapCase<F>& mc, double serial, const std::vector<i64>& in, const std::vector<i64>& expect) {
    boost::asio::thread_pool pool(2);
    warm(pool);
    // No map in Asio: hand-chunked into ceil(len / (4 * workers)) items per task (Python's
    // default chunksize), one post per chunk, a std::latch to wait.
    map_report(mc, "asio", serial, expect, [&] {
        std::size_t n = in.size();
        std::size_t chunk = std::max<std::size_t>(1, (n + 7) / 8);
        std::size_t chunks = (n + chunk - 1) / chunk;
        std::vector<i64> out(n);
        std::latch done(static_cast<std::ptrdiff_t>(chunks));
        for (std::size_t c = 0; c < chunks; ++c) {
            boost::asio::post(pool, [&, c] {
                std::size_t e = std::min(n, (c + 1) * chunk);
                for (std::size_t i = c * chunk; i < e; ++i) out[i] = mc.f(in[i]);
                done.count_down();
            });
        }
        done.wait();
        return out;
    });
    pool.join();
}

#ifdef PYPOOL_BENCH_HAVE_TBB
template <class F>
void w4_tbb(const MapCase<F>& mc, double serial, const std::vector<i64>& in, const std::vector<i64>& expect) {
    auto arena = make_inside_arena();
    map_report(mc, "tbb", serial, expect, [&] {
        std::vector<i64> out(in.size());
        arena.execute([&] {
            tbb::parallel_for(tbb::blocked_range<std::size_t>(0, in.size()), [&](const auto& r) {
                for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = mc.f(in[i]);
            });
        });
        return out;
    });
}
#endif

template <class F>
void w4(const MapCase<F>& mc) {
    std::vector<i64> in = iota_vec(mc.n);
    std::vector<i64> expect;
    double serial = serial_time(mc, in, expect);
    result(mc.name, "serial", "time_s", serial);
    if (cfg.libs.count("pypool")) w4_pypool(mc, serial, in, expect);
    if (cfg.libs.count("asio")) w4_asio(mc, serial, in, expect);
#ifdef PYPOOL_BENCH_HAVE_TBB
    if (cfg.libs.count("tbb")) w4_tbb(mc, serial, in, expect);
#endif
}

// ---- W5 follow-ups ---------------------------------------------------------------------------

void w5_pypool(std::size_t n) {
    // W5a: the callback (on the callback thread) submits the follow-up.
    {
        std::latch done(static_cast<std::ptrdiff_t>(2 * n));
        pypool::ThreadPool pool(2);
        warm(pool);
        auto follow = [&done] { done.count_down(); };
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            pool.apply_async([&done] { done.count_down(); return 1; }, {},
                             {.callback = [&pool, &follow](const int&) { pool.apply_async(follow); }});
        }
        done.wait();
        double t = seconds_since(t0);
        result("W5a", "pypool", "rate", static_cast<double>(2 * n) / t);
    }
    // W5b: the task itself submits its follow-up from the worker.
    {
        std::latch done(static_cast<std::ptrdiff_t>(2 * n));
        pypool::ThreadPool pool(2);
        warm(pool);
        auto follow = [&done] { done.count_down(); };
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            pool.apply_async([&done, &pool, &follow] {
                done.count_down();
                pool.apply_async(follow);
            });
        }
        done.wait();
        double t = seconds_since(t0);
        result("W5b", "pypool", "rate", static_cast<double>(2 * n) / t);
    }
}

void w5_asio(std::size_t n) {
    // W5a: a "callback thread" made of an io_context on its own thread, as pypool has: the
    // handler posts its completion there, which posts the follow-up to the pool.
    {
        std::latch done(static_cast<std::ptrdiff_t>(2 * n));
        boost::asio::thread_pool pool(2);
        warm(pool);
        boost::asio::io_context loop;
        auto guard = boost::asio::make_work_guard(loop);
        std::thread loop_thread([&loop] { loop.run(); });
        auto follow = [&done] { done.count_down(); };
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            boost::asio::post(pool, [&] {
                done.count_down();
                boost::asio::post(loop, [&] { boost::asio::post(pool, follow); });
            });
        }
        done.wait();
        double t = seconds_since(t0);
        guard.reset();
        loop_thread.join();
        pool.join();
        result("W5a", "asio", "rate", static_cast<double>(2 * n) / t);
    }
    // W5b: the handler posts its follow-up.
    {
        std::latch done(static_cast<std::ptrdiff_t>(2 * n));
        boost::asio::thread_pool pool(2);
        warm(pool);
        auto follow = [&done] { done.count_down(); };
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            boost::asio::post(pool, [&] {
                done.count_down();
                boost::asio::post(pool, follow);
            });
        }
        done.wait();
        double t = seconds_since(t0);
        pool.join();
        result("W5b", "asio", "rate", static_cast<double>(2 * n) / t);
    }
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void w5_tbb(std::size_t n) {
    note("W5a", "tbb", "n/a (no callback thread)");
    std::atomic<i64> ran{0};
    auto arena = make_inside_arena();
    double t = 0;
    arena.execute([&] {
        tbb::task_group tg;
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            tg.run([&] {
                ran.fetch_add(1, std::memory_order_relaxed);
                tg.run([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            });
        }
        tg.wait();
        t = seconds_since(t0);
    });
    check(ran.load() == static_cast<i64>(2 * n), "W5b count");
    result("W5b", "tbb", "rate", static_cast<double>(2 * n) / t);
}
#endif

// ---- W6 nested waits -------------------------------------------------------------------------

i64 node_pypool(pypool::ThreadPool* pool, int d) {
    if (d <= 1) return 1;
    auto a = pool->apply_async(node_pypool, std::tuple{pool, d - 1});
    auto b = pool->apply_async(node_pypool, std::tuple{pool, d - 1});
    return a.get() + b.get() + 1;
}

void w6_pypool() {
    pypool::ThreadPool pool(2);
    warm(pool);
    const int d = w6_depth();
    w6_report("pypool", [&] { return pool.apply(node_pypool, std::tuple{&pool, d}); });
}

#ifdef PYPOOL_BENCH_HAVE_TBB
i64 node_tbb(int d) {
    if (d <= 1) return 1;
    i64 a = 0, b = 0;
    tbb::task_group tg;
    tg.run([&a, d] { a = node_tbb(d - 1); });
    tg.run([&b, d] { b = node_tbb(d - 1); });
    tg.wait();
    return a + b + 1;
}

void w6_tbb() {
    auto arena = make_inside_arena();
    const int d = w6_depth();
    w6_report("tbb", [&] { return arena.execute([d] { return node_tbb(d); }); });
}
#endif

// ---- W7 completion order ---------------------------------------------------------------------

template <class P, class F, class V>
concept HasImapUnordered = requires(P& p, F f, V& v) {
    { p.imap_unordered(f, v, std::size_t{1}) };
};

template <class FS>
concept HasAsCompleted = requires(FS& fs) {
    { as_completed(fs) };
};

template <class FS>
i64 sum_as_completed(FS& fs) {
    i64 sum = 0;
    for (auto&& f : as_completed(fs)) sum += f.result();
    return sum;
}

// Pool is a template parameter so that imap_unordered is only checked where it exists.
template <class Pool = pypool::ThreadPool>
void w7_pypool(std::size_t n) {
    auto identity = [](i64 x) { return x; };
    const i64 expect = static_cast<i64>(n) * static_cast<i64>(n - 1) / 2;
    if constexpr (HasImapUnordered<Pool, decltype(identity), const std::vector<i64>>) {
        std::vector<i64> in = iota_vec(n);
        Pool pool(2);
        warm(pool);
        auto t0 = Clock::now();
        i64 sum = 0;
        for (auto x : pool.imap_unordered(identity, in, std::size_t{1})) sum += x;
        double t = seconds_since(t0);
        check(sum == expect, "W7a sum");
        result("W7a", "pypool", "rate", static_cast<double>(n) / t);
    } else {
        note("W7a", "pypool", "imap_unordered not available in this build");
    }
    using FS = std::vector<pypool::AsyncResult<i64>>;
    if constexpr (HasAsCompleted<FS>) {
        Pool pool(2);
        warm(pool);
        FS fs;
        fs.reserve(n);
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) fs.push_back(pool.submit(identity, static_cast<i64>(i)));
        i64 sum = sum_as_completed(fs);
        double t = seconds_since(t0);
        check(sum == expect, "W7b sum");
        result("W7b", "pypool", "rate", static_cast<double>(n) / t);
    } else {
        note("W7b", "pypool", "as_completed not available in this build");
    }
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void w7_tbb(std::size_t n) {
    // One task per item on an arena served by 2 TBB workers (the main thread stays outside),
    // each pushing its value into a concurrent_bounded_queue that the main thread drains with
    // blocking pops, in arrival order. The same code stands for W7a and W7b.
    const i64 expect = static_cast<i64>(n) * static_cast<i64>(n - 1) / 2;
    auto arena = make_outside_arena();
    tbb::concurrent_bounded_queue<i64> q;
    tbb::task_group tg;
    std::latch producer_done(1);
    auto t0 = Clock::now();
    arena.enqueue([&] {
        for (std::size_t i = 0; i < n; ++i) tg.run([&q, i] { q.push(static_cast<i64>(i)); });
        tg.wait();
        producer_done.count_down();
    });
    i64 sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
        i64 v = 0;
        q.pop(v);
        sum += v;
    }
    double t = seconds_since(t0);
    producer_done.wait();
    check(sum == expect, "W7 sum");
    result("W7a", "tbb", "rate", static_cast<double>(n) / t);
    result("W7b", "tbb", "rate", static_cast<double>(n) / t);
}
#endif

// ---- W8 imap with the default chunksize 1 (issue 15: a porter's first line) -------------------

template <class P, class F, class V>
concept HasImap = requires(P& p, F f, V& v) {
    { p.imap(f, v) };
};

// Ordered imap, chunksize 1 (the default), a trivial function: the per-item cost of the
// stream's hand-offs between workers and the consuming thread.
template <class Pool = pypool::ThreadPool>
void w8_pypool(std::size_t n) {
    auto identity = [](i64 x) { return x; };
    const i64 expect = static_cast<i64>(n) * static_cast<i64>(n - 1) / 2;
    if constexpr (HasImap<Pool, decltype(identity), const std::vector<i64>>) {
        std::vector<i64> in = iota_vec(n);
        Pool pool(2);
        warm(pool);
        auto t0 = Clock::now();
        i64 sum = 0;
        i64 prev = -1;
        bool ordered = true;
        for (auto x : pool.imap(identity, in)) {
            ordered = ordered && x == prev + 1;
            prev = x;
            sum += x;
        }
        double t = seconds_since(t0);
        check(sum == expect && ordered, "W8 sum and order");
        result("W8", "pypool", "rate", static_cast<double>(n) / t);
    } else {
        note("W8", "pypool", "imap not available in this build");
    }
}

// ---- idle CPU ------------------------------------------------------------------------------

double idle_duration() { return cfg.smoke ? 0.2 : cfg.idle_seconds; }

void idle_report(const char* lib, double cpu0, Clock::time_point t0) {
    double cpu = pypool_bench::process_cpu_seconds() - cpu0;
    double wall = seconds_since(t0);
    check(cpu >= 0 && wall > 0, "IDLE clocks");
    result("IDLE", lib, "cpu_ms_per_s", cpu * 1000.0 / wall);
}

void sleep_idle() {
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_duration()));
}

void idle_pypool() {
    pypool::ThreadPool pool(2);
    warm(pool);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let spinning workers park
    double cpu0 = pypool_bench::process_cpu_seconds();
    auto t0 = Clock::now();
    sleep_idle();
    idle_report("pypool", cpu0, t0);
    check(pool.apply([] { return 7; }) == 7, "IDLE pool still works");
}

void idle_asio() {
    boost::asio::thread_pool pool(2);
    warm(pool);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    double cpu0 = pypool_bench::process_cpu_seconds();
    auto t0 = Clock::now();
    sleep_idle();
    idle_report("asio", cpu0, t0);
    pool.join();
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void idle_tbb() {
    auto arena = make_inside_arena();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    double cpu0 = pypool_bench::process_cpu_seconds();
    auto t0 = Clock::now();
    sleep_idle();
    idle_report("tbb", cpu0, t0);
}
#endif

// ---- memory per queued task -------------------------------------------------------------

void mem_pypool(std::size_t n) {
    malloc_trim(0);
    pypool::ThreadPool pool(2);
    warm(pool);
    std::latch gate(1), started(2);
    auto blocked = [&] { started.count_down(); gate.wait(); };
    auto b1 = pool.apply_async(blocked);
    auto b2 = pool.apply_async(blocked);
    started.wait();
    std::vector<pypool::AsyncResult<i64>> rs(n);  // the handles' own storage is touched before
    std::int64_t before = pypool_bench::rss_bytes();
    for (std::size_t i = 0; i < n; ++i) rs[i] = pool.apply_async([](i64 x) { return x * 2; }, std::tuple{static_cast<i64>(i)});
    std::int64_t after = pypool_bench::rss_bytes();
    gate.count_down();
    i64 sum = 0;
    for (auto& r : rs) sum += r.get();
    check(sum == static_cast<i64>(n) * static_cast<i64>(n - 1), "MEM sum");
    mem_report("pypool", before, after, n);
}

void mem_asio(std::size_t n) {
    malloc_trim(0);
    boost::asio::thread_pool pool(2);
    warm(pool);
    std::latch gate(1), started(2);
    for (int k = 0; k < 2; ++k) boost::asio::post(pool, [&] { started.count_down(); gate.wait(); });
    started.wait();
    std::vector<std::future<i64>> fs(n);
    std::int64_t before = pypool_bench::rss_bytes();
    for (std::size_t i = 0; i < n; ++i) {
        std::packaged_task<i64()> task([x = static_cast<i64>(i)] { return x * 2; });
        fs[i] = task.get_future();
        boost::asio::post(pool, std::move(task));
    }
    std::int64_t after = pypool_bench::rss_bytes();
    gate.count_down();
    i64 sum = 0;
    for (auto& f : fs) sum += f.get();
    pool.join();
    check(sum == static_cast<i64>(n) * static_cast<i64>(n - 1), "MEM sum");
    mem_report("asio", before, after, n);
}

#ifdef PYPOOL_BENCH_HAVE_TBB
void mem_tbb(std::size_t n) {
    malloc_trim(0);
    auto arena = make_inside_arena();
    std::vector<i64> res(n, -1);
    std::int64_t before = 0, after = 0;
    arena.execute([&] {
        tbb::task_group tg;
        std::latch gate(1), started(1);
        tg.run([&] { started.count_down(); gate.wait(); });  // the arena's one worker steals it
        started.wait();
        before = pypool_bench::rss_bytes();
        for (std::size_t i = 0; i < n; ++i) tg.run([&res, i] { res[i] = static_cast<i64>(i) * 2; });
        after = pypool_bench::rss_bytes();
        gate.count_down();
        tg.wait();
    });
    i64 sum = std::accumulate(res.begin(), res.end(), i64{0});
    check(sum == static_cast<i64>(n) * static_cast<i64>(n - 1), "MEM sum");
    mem_report("tbb", before, after, n);
}
#endif

// ---- driver ----------------------------------------------------------------------------------

struct Workload {
    std::string id;
    std::function<void(const std::string& lib)> run;  // lib: pypool / asio / tbb
};

/// W4 runs its serial reference once and then every selected library: it runs for this one.
std::string first_lib() {
    for (const char* lib : {"pypool", "asio", "tbb"}) {
        if (cfg.libs.count(lib)) return lib;
    }
    return {};
}

bool selected(const std::string& id) {
    if (cfg.only.empty()) return true;
    for (const auto& o : cfg.only) {
        if (o == id) return true;
    }
    return false;
}

std::vector<Workload> workloads() {
    std::vector<Workload> ws;
    ws.push_back({"W1", [](const std::string& lib) {
                      std::size_t n = size_n(1'000'000, 2'000);
                      if (lib == "pypool") w1_pypool(n);
                      if (lib == "asio") w1_asio(n);
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") w1_tbb(n);
#endif
                  }});
    ws.push_back({"W2", [](const std::string& lib) {
                      std::size_t n = size_n(1'000'000, 2'000);
                      if (lib == "pypool") w2_pypool(n);
                      if (lib == "asio") w2_asio(n);
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") w2_tbb(n);
#endif
                  }});
    ws.push_back({"W3", [](const std::string& lib) {
                      std::size_t n = size_n(100'000, 200);
                      if (lib == "pypool") w3_pypool(n);
                      if (lib == "asio") w3_asio(n);
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") w3_tbb(n);
#endif
                  }});
    ws.push_back({"W4a", [](const std::string& lib) {
                      if (lib != first_lib()) return;
                      auto f = [](i64 x) { return x * x + 1; };
                      w4(MapCase<decltype(f)>{"W4a", f, size_n(10'000'000, 10'000), cfg.smoke ? 1 : 3});
                  }});
    ws.push_back({"W4b", [](const std::string& lib) {
                      if (lib != first_lib()) return;
                      auto f = [](i64 x) { return spin_work(x); };
                      w4(MapCase<decltype(f)>{"W4b", f, size_n(1'000'000, 2'000), 1});
                  }});
    ws.push_back({"W5", [](const std::string& lib) {
                      std::size_t n = size_n(100'000, 1'000);
                      if (lib == "pypool") w5_pypool(n);
                      if (lib == "asio") w5_asio(n);
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") w5_tbb(n);
#endif
                  }});
    ws.push_back({"W6", [](const std::string& lib) {
                      if (lib == "pypool") w6_pypool();
                      if (lib == "asio") note("W6", "asio", "deadlock (not run)");
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") w6_tbb();
#endif
                  }});
    ws.push_back({"W7", [](const std::string& lib) {
                      std::size_t n = size_n(1'000'000, 2'000);
                      if (lib == "pypool") w7_pypool(n);
                      if (lib == "asio") {
                          note("W7a", "asio", "n/a (no completion-order API)");
                          note("W7b", "asio", "n/a (no completion-order API)");
                      }
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") w7_tbb(n);
#endif
                  }});
    ws.push_back({"W8", [](const std::string& lib) {
                      if (lib == "pypool") w8_pypool(size_n(1'000'000, 2'000));
                      if (lib == "asio") note("W8", "asio", "n/a (no ordered-stream API)");
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") note("W8", "tbb", "n/a (no ordered-stream API)");
#endif
                  }});
    ws.push_back({"IDLE", [](const std::string& lib) {
                      if (lib == "pypool") idle_pypool();
                      if (lib == "asio") idle_asio();
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") idle_tbb();
#endif
                  }});
    ws.push_back({"MEM", [](const std::string& lib) {
                      std::size_t n = size_n(1'000'000, 2'000);
                      if (lib == "pypool") mem_pypool(n);
                      if (lib == "asio") mem_asio(n);
#ifdef PYPOOL_BENCH_HAVE_TBB
                      if (lib == "tbb") mem_tbb(n);
#endif
                  }});
    return ws;
}

[[noreturn]] void usage(int code) {
    std::fprintf(code == 0 ? stdout : stderr,
                 "usage: pypool-bench [--smoke] [--junit FILE] [--reps N] [--only W1,W3,...]\n"
                 "                    [--scale F] [--libs pypool,asio,tbb] [--idle-seconds S]\n"
                 "workloads: W1 W2 W3 W4a W4b W5 W6 W7 W8 IDLE MEM\n");
    std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
    cfg.libs = {"pypool", "asio", "tbb"};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(2);
            return argv[++i];
        };
        if (a == "--smoke") cfg.smoke = true;
        else if (a == "--junit") cfg.junit = value();
        else if (a == "--reps") cfg.reps = std::max(1, std::atoi(value().c_str()));
        else if (a == "--scale") cfg.scale = std::atof(value().c_str());
        else if (a == "--idle-seconds") cfg.idle_seconds = std::atof(value().c_str());
        else if (a == "--only") {
            cfg.only = split_list(value());
            if (cfg.only.count("W4")) cfg.only.insert({"W4a", "W4b"});
        } else if (a == "--libs") cfg.libs = split_list(value());
        else if (a == "--help" || a == "-h") usage(0);
        else usage(2);
    }
    if (cfg.scale <= 0) usage(2);

#ifdef PYPOOL_BENCH_HAVE_TBB
    tbb::global_control tbb_threads(tbb::global_control::max_allowed_parallelism, 3);
    const std::vector<std::string> all_libs = {"pypool", "asio", "tbb"};
#else
    const std::vector<std::string> all_libs = {"pypool", "asio"};
    if (cfg.libs.count("tbb")) note("*", "tbb", "not built (oneTBB not found)");
#endif
    std::printf("# pypool-bench: W1 asio = post(pool, std::packaged_task) + std::future; "
                "tbb = task_arena(2) + task_group/parallel_for\n");
    calibrate_spin();

    auto ws = workloads();
    std::vector<CaseOutcome> outcomes;
    for (auto& w : ws) {
        if (selected(w.id)) outcomes.push_back({w.id, 0, {}});
    }
    // MEM first in each repetition: it reads the resident set, which earlier workloads grow.
    std::stable_partition(ws.begin(), ws.end(), [](const Workload& w) { return w.id == "MEM"; });
    int failures = 0;
    for (int rep = 0; rep < cfg.reps; ++rep) {
        for (auto& w : ws) {
            if (!selected(w.id)) continue;
            auto& oc = *std::find_if(outcomes.begin(), outcomes.end(), [&](const CaseOutcome& c) { return c.id == w.id; });
            for (const auto& lib : all_libs) {
                if (!cfg.libs.count(lib)) continue;
                auto t0 = Clock::now();
                try {
                    w.run(lib);
                } catch (const std::exception& e) {
                    oc.failures.push_back(lib + ": " + e.what());
                    std::fprintf(stderr, "FAIL %s %s %s\n", w.id.c_str(), lib.c_str(), e.what());
                    ++failures;
                } catch (...) {
                    oc.failures.push_back(lib + ": unknown exception");
                    std::fprintf(stderr, "FAIL %s %s unknown exception\n", w.id.c_str(), lib.c_str());
                    ++failures;
                }
                oc.seconds += seconds_since(t0);
            }
        }
    }
    if (!cfg.junit.empty() && !write_junit(cfg.junit, "bench_smoke", outcomes)) {
        std::fprintf(stderr, "pypool-bench: cannot write %s\n", cfg.junit.c_str());
        return 1;
    }
    if (cfg.smoke) {
        std::printf("# smoke: %zu workloads, %d failures\n", outcomes.size(), failures);
    }
    return failures == 0 ? 0 : 1;
}
