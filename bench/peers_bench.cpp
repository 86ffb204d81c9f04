// peers-bench: the workloads of pypool-bench (issue 7; peers of issue 15) on three more C++
// thread pools, 2 worker threads each, each driven through its own idiomatic API:
//   bs           BS::thread_pool (Barak Shoshany, header-only)      PYPOOL_PEER_HAVE_BS
//   taskflow     tf::Executor (Taskflow, header-only)                PYPOOL_PEER_HAVE_TASKFLOW
//   concurrencpp concurrencpp::runtime's thread_pool_executor        PYPOOL_PEER_HAVE_CONCURRENCPP
// The peers' sources are not in git: bench/fetch_peers.sh puts them in bench/peers/, and
// scripts/bench builds this program (outside the meson build) with whichever it finds.
// A peer that is absent gives NOTE lines "missing (bench/peers/<dir> not found)".
//
// Output, as pypool-bench's (same workloads, sizes, result checks and metric names):
//   RESULT <workload> <library> <metric> <value>
//   NOTE   <workload> <library> <text>            (a comparison that is not run, and why)
// plus '#' comment lines (the peers' versions among them).
//
// Every pool is built and warmed up (100 no-op tasks) outside the timed regions.
// --smoke runs every workload tiny and checks the results only.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <malloc.h>

#ifdef PYPOOL_PEER_HAVE_BS
#include <BS_thread_pool.hpp>
#endif
#ifdef PYPOOL_PEER_HAVE_TASKFLOW
#include <taskflow/taskflow.hpp>
#endif
#ifdef PYPOOL_PEER_HAVE_CONCURRENCPP
#include <concurrencpp/concurrencpp.h>
#endif

#include "bench_common.hpp"
#include "proc_status.hpp"

using namespace pypool_bench;

namespace {

using i64 = std::int64_t;

[[maybe_unused]] i64 w1_expect(std::size_t n) { return static_cast<i64>(n) * static_cast<i64>(n - 1); }

/// W3: one task at a time, submit and wait; the same warm-up and checks as pypool-bench.
template <class RoundTrip>
[[maybe_unused]] void w3_run(const char* lib, std::size_t n, RoundTrip&& round_trip) {
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

[[maybe_unused]] double idle_duration() { return cfg.smoke ? 0.2 : cfg.idle_seconds; }

/// IDLE: CPU used by the process while a warmed-up pool has nothing to do.
[[maybe_unused]] void idle_measure(const char* lib) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let spinning workers park
    double cpu0 = pypool_bench::process_cpu_seconds();
    auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_duration()));
    double cpu = pypool_bench::process_cpu_seconds() - cpu0;
    double wall = seconds_since(t0);
    check(cpu >= 0 && wall > 0, "IDLE clocks");
    result("IDLE", lib, "cpu_ms_per_s", cpu * 1000.0 / wall);
}

// ---- BS::thread_pool --------------------------------------------------------------------------
// submit_task returns a std::future, detach_task returns nothing, wait() waits for every
// queued and running task. There is no callback or continuation and no completion-order API,
// and a task that blocks on another task's future holds its thread (wait() from a worker is
// only detected, as BS::wait_deadlock, with BS::tp::wait_deadlock_checks).

#ifdef PYPOOL_PEER_HAVE_BS
using BsPool = BS::thread_pool<>;

void warm(BsPool& pool) {
    for (int i = 0; i < 100; ++i) pool.detach_task([] {});
    pool.wait();
}

void w1_bs(std::size_t n) {
    BsPool pool(2);
    warm(pool);
    std::vector<std::future<i64>> fs;
    fs.reserve(n);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) fs.push_back(pool.submit_task([x = static_cast<i64>(i)] { return x * 2; }));
    i64 sum = 0;
    for (auto& f : fs) sum += f.get();
    double t = seconds_since(t0);
    check(sum == w1_expect(n), "W1 sum");
    result("W1", "bs", "rate", static_cast<double>(n) / t);
}

void w2_bs(std::size_t n) {
    std::atomic<i64> counter{0};
    BsPool pool(2);
    warm(pool);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) pool.detach_task([&counter] { counter.fetch_add(1, std::memory_order_relaxed); });
    pool.wait();
    double t = seconds_since(t0);
    check(counter.load() == static_cast<i64>(n), "W2 count");
    result("W2", "bs", "rate", static_cast<double>(n) / t);
}

void w3_bs(std::size_t n) {
    BsPool pool(2);
    warm(pool);
    w3_run("bs", n, [&pool](i64 i) { return pool.submit_task([i] { return i + 1; }).get(); });
}

void w5_bs(std::size_t n) {
    note("W5a", "bs", "n/a (no callback or continuation API)");
    std::atomic<i64> ran{0};
    BsPool pool(2);
    warm(pool);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        pool.detach_task([&] {
            ran.fetch_add(1, std::memory_order_relaxed);
            pool.detach_task([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        });
    }
    pool.wait();  // waits for the follow-ups too: they are queued before their parent ends
    double t = seconds_since(t0);
    check(ran.load() == static_cast<i64>(2 * n), "W5b count");
    result("W5b", "bs", "rate", static_cast<double>(2 * n) / t);
}

void idle_bs() {
    BsPool pool(2);
    warm(pool);
    idle_measure("bs");
    check(pool.submit_task([] { return 7; }).get() == 7, "IDLE pool still works");
}

void mem_bs(std::size_t n) {
    malloc_trim(0);
    BsPool pool(2);
    warm(pool);
    std::latch gate(1), started(2);
    for (int k = 0; k < 2; ++k) pool.detach_task([&] { started.count_down(); gate.wait(); });
    started.wait();
    std::vector<std::future<i64>> fs(n);
    std::int64_t before = pypool_bench::rss_bytes();
    for (std::size_t i = 0; i < n; ++i) fs[i] = pool.submit_task([x = static_cast<i64>(i)] { return x * 2; });
    std::int64_t after = pypool_bench::rss_bytes();
    gate.count_down();
    i64 sum = 0;
    for (auto& f : fs) sum += f.get();
    check(sum == w1_expect(n), "MEM sum");
    mem_report("bs", before, after, n);
}
#endif

// ---- Taskflow ---------------------------------------------------------------------------------
// tf::Executor(2): async gives a std::future, silent_async nothing, wait_for_all waits for
// everything submitted. Continuations are dependent async tasks (silent_dependent_async(f, a)
// runs f once a is done); nested waits are TaskGroup::corun, which runs other tasks while
// it waits. No completion-order API.

#ifdef PYPOOL_PEER_HAVE_TASKFLOW
void warm(tf::Executor& ex) {
    for (int i = 0; i < 100; ++i) ex.silent_async([] {});
    ex.wait_for_all();
}

void w1_taskflow(std::size_t n) {
    tf::Executor ex(2);
    warm(ex);
    std::vector<std::future<i64>> fs;
    fs.reserve(n);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) fs.push_back(ex.async([x = static_cast<i64>(i)] { return x * 2; }));
    i64 sum = 0;
    for (auto& f : fs) sum += f.get();
    double t = seconds_since(t0);
    check(sum == w1_expect(n), "W1 sum");
    result("W1", "taskflow", "rate", static_cast<double>(n) / t);
}

void w2_taskflow(std::size_t n) {
    std::atomic<i64> counter{0};
    tf::Executor ex(2);
    warm(ex);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) ex.silent_async([&counter] { counter.fetch_add(1, std::memory_order_relaxed); });
    ex.wait_for_all();
    double t = seconds_since(t0);
    check(counter.load() == static_cast<i64>(n), "W2 count");
    result("W2", "taskflow", "rate", static_cast<double>(n) / t);
}

void w3_taskflow(std::size_t n) {
    tf::Executor ex(2);
    warm(ex);
    w3_run("taskflow", n, [&ex](i64 i) { return ex.async([i] { return i + 1; }).get(); });
}

void w5_taskflow(std::size_t n) {
    // W5a: the follow-up is a dependent async task of the first: the main thread submits both,
    // the worker that finishes the first schedules the follow-up (Taskflow's continuation).
    {
        std::atomic<i64> ran{0};
        tf::Executor ex(2);
        warm(ex);
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            tf::AsyncTask first = ex.silent_dependent_async([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            ex.silent_dependent_async([&ran] { ran.fetch_add(1, std::memory_order_relaxed); }, first);
        }
        ex.wait_for_all();
        double t = seconds_since(t0);
        check(ran.load() == static_cast<i64>(2 * n), "W5a count");
        result("W5a", "taskflow", "rate", static_cast<double>(2 * n) / t);
    }
    // W5b: the task submits its follow-up from the worker (silent_async from a worker).
    {
        std::atomic<i64> ran{0};
        tf::Executor ex(2);
        warm(ex);
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            ex.silent_async([&] {
                ran.fetch_add(1, std::memory_order_relaxed);
                ex.silent_async([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            });
        }
        ex.wait_for_all();
        double t = seconds_since(t0);
        check(ran.load() == static_cast<i64>(2 * n), "W5b count");
        result("W5b", "taskflow", "rate", static_cast<double>(2 * n) / t);
    }
}

// W6: TaskGroup (Taskflow 4's recursive-parallelism idiom): spawn both children, then
// corun, which keeps the worker executing tasks until the group's tasks are done.
i64 node_taskflow(tf::Executor& ex, int d) {
    if (d <= 1) return 1;
    i64 a = 0, b = 0;
    tf::TaskGroup tg = ex.task_group();
    tg.silent_async([&ex, &a, d] { a = node_taskflow(ex, d - 1); });
    tg.silent_async([&ex, &b, d] { b = node_taskflow(ex, d - 1); });
    tg.corun();
    return a + b + 1;
}

void w6_taskflow() {
    tf::Executor ex(2);
    warm(ex);
    const int d = w6_depth();
    w6_report("taskflow", [&] { return ex.async([&ex, d] { return node_taskflow(ex, d); }).get(); });
}

void idle_taskflow() {
    tf::Executor ex(2);
    warm(ex);
    idle_measure("taskflow");
    check(ex.async([] { return 7; }).get() == 7, "IDLE pool still works");
}

void mem_taskflow(std::size_t n) {
    malloc_trim(0);
    tf::Executor ex(2);
    warm(ex);
    std::latch gate(1), started(2);
    for (int k = 0; k < 2; ++k) ex.silent_async([&] { started.count_down(); gate.wait(); });
    started.wait();
    std::vector<std::future<i64>> fs(n);
    std::int64_t before = pypool_bench::rss_bytes();
    for (std::size_t i = 0; i < n; ++i) fs[i] = ex.async([x = static_cast<i64>(i)] { return x * 2; });
    std::int64_t after = pypool_bench::rss_bytes();
    gate.count_down();
    i64 sum = 0;
    for (auto& f : fs) sum += f.get();
    check(sum == w1_expect(n), "MEM sum");
    mem_report("taskflow", before, after, n);
}
#endif

// ---- concurrencpp -----------------------------------------------------------------------------
// The runtime's thread_pool_executor, with runtime_options::max_cpu_threads = 2: submit gives
// a concurrencpp::result (get() blocks), post nothing. Continuations and nested waits are
// coroutines that co_await results. There is no join/drain (shutdown() drops queued tasks),
// so fire-and-forget completion is counted with a std::latch; when_any is the only
// completion-order primitive.

#ifdef PYPOOL_PEER_HAVE_CONCURRENCPP
using CcExecutor = concurrencpp::thread_pool_executor;

struct CcPool {
    concurrencpp::runtime rt;
    std::shared_ptr<CcExecutor> ex;

    static concurrencpp::runtime_options options() {
        concurrencpp::runtime_options o;
        o.max_cpu_threads = 2;
        return o;
    }
    CcPool() : rt(options()), ex(rt.thread_pool_executor()) {
        std::latch done(100);
        for (int i = 0; i < 100; ++i) ex->post([&done] { done.count_down(); });
        done.wait();
    }
};

void w1_concurrencpp(std::size_t n) {
    CcPool pool;
    auto& ex = *pool.ex;
    std::vector<concurrencpp::result<i64>> rs;
    rs.reserve(n);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) rs.push_back(ex.submit([x = static_cast<i64>(i)] { return x * 2; }));
    i64 sum = 0;
    for (auto& r : rs) sum += r.get();
    double t = seconds_since(t0);
    check(sum == w1_expect(n), "W1 sum");
    result("W1", "concurrencpp", "rate", static_cast<double>(n) / t);
}

void w2_concurrencpp(std::size_t n) {
    std::atomic<i64> counter{0};
    std::latch done(static_cast<std::ptrdiff_t>(n));
    CcPool pool;
    auto& ex = *pool.ex;
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        ex.post([&counter, &done] {
            counter.fetch_add(1, std::memory_order_relaxed);
            done.count_down();
        });
    }
    done.wait();
    double t = seconds_since(t0);
    check(counter.load() == static_cast<i64>(n), "W2 count");
    result("W2", "concurrencpp", "rate", static_cast<double>(n) / t);
}

void w3_concurrencpp(std::size_t n) {
    CcPool pool;
    auto& ex = *pool.ex;
    w3_run("concurrencpp", n, [&ex](i64 i) { return ex.submit([i] { return i + 1; }).get(); });
}

// W5a: a fire-and-forget coroutine per item: co_await the first task's result (the rest of
// the coroutine runs as its continuation, on the worker that completed it) and post the
// follow-up from there.
concurrencpp::null_result w5a_chain(CcExecutor* ex, std::atomic<i64>* ran, std::latch* done) {
    int one = co_await ex->submit([ran, done] {
        ran->fetch_add(1, std::memory_order_relaxed);
        done->count_down();
        return 1;
    });
    ex->post([ran, done, one] {
        ran->fetch_add(one, std::memory_order_relaxed);
        done->count_down();
    });
}

void w5_concurrencpp(std::size_t n) {
    {
        std::atomic<i64> ran{0};
        std::latch done(static_cast<std::ptrdiff_t>(2 * n));
        CcPool pool;
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) w5a_chain(pool.ex.get(), &ran, &done);
        done.wait();
        double t = seconds_since(t0);
        check(ran.load() == static_cast<i64>(2 * n), "W5a count");
        result("W5a", "concurrencpp", "rate", static_cast<double>(2 * n) / t);
    }
    {
        std::atomic<i64> ran{0};
        std::latch done(static_cast<std::ptrdiff_t>(2 * n));
        CcPool pool;
        auto& ex = *pool.ex;
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            ex.post([&] {
                ran.fetch_add(1, std::memory_order_relaxed);
                done.count_down();
                ex.post([&ran, &done] {
                    ran.fetch_add(1, std::memory_order_relaxed);
                    done.count_down();
                });
            });
        }
        done.wait();
        double t = seconds_since(t0);
        check(ran.load() == static_cast<i64>(2 * n), "W5b count");
        result("W5b", "concurrencpp", "rate", static_cast<double>(2 * n) / t);
    }
}

// W6: a coroutine per node, started on the executor (executor_tag); it co_awaits its two
// children instead of blocking, so the worker runs other nodes meanwhile (no deadlock).
concurrencpp::result<i64> node_concurrencpp(concurrencpp::executor_tag, CcExecutor* ex, int d) {
    if (d <= 1) co_return 1;
    auto a = node_concurrencpp({}, ex, d - 1);
    auto b = node_concurrencpp({}, ex, d - 1);
    i64 ra = co_await a;
    i64 rb = co_await b;
    co_return ra + rb + 1;
}

void w6_concurrencpp() {
    CcPool pool;
    const int d = w6_depth();
    w6_report("concurrencpp", [&] { return node_concurrencpp({}, pool.ex.get(), d).get(); });
}

void idle_concurrencpp() {
    CcPool pool;
    idle_measure("concurrencpp");
    check(pool.ex->submit([] { return 7; }).get() == 7, "IDLE pool still works");
}

void mem_concurrencpp(std::size_t n) {
    malloc_trim(0);
    CcPool pool;
    auto& ex = *pool.ex;
    std::latch gate(1), started(2);
    for (int k = 0; k < 2; ++k) ex.post([&] { started.count_down(); gate.wait(); });
    started.wait();
    std::vector<concurrencpp::result<i64>> rs(n);
    std::int64_t before = pypool_bench::rss_bytes();
    for (std::size_t i = 0; i < n; ++i) rs[i] = ex.submit([x = static_cast<i64>(i)] { return x * 2; });
    std::int64_t after = pypool_bench::rss_bytes();
    gate.count_down();
    i64 sum = 0;
    for (auto& r : rs) sum += r.get();
    check(sum == w1_expect(n), "MEM sum");
    mem_report("concurrencpp", before, after, n);
}
#endif

// ---- driver ------------------------------------------------------------------------------------

struct Peer {
    const char* lib;
    const char* dir;  // under bench/peers/
    bool built;
};

const Peer peers[] = {
    {"bs", "bs-thread-pool",
#ifdef PYPOOL_PEER_HAVE_BS
     true
#else
     false
#endif
    },
    {"taskflow", "taskflow",
#ifdef PYPOOL_PEER_HAVE_TASKFLOW
     true
#else
     false
#endif
    },
    {"concurrencpp", "concurrencpp",
#ifdef PYPOOL_PEER_HAVE_CONCURRENCPP
     true
#else
     false
#endif
    },
};

/// The workload ids a workload reports under (W5 gives W5a and W5b, W7 W7a and W7b).
std::vector<const char*> reported_ids(const std::string& id) {
    if (id == "W5") return {"W5a", "W5b"};
    if (id == "W7") return {"W7a", "W7b"};
    if (id == "W1") return {"W1"};
    if (id == "W2") return {"W2"};
    if (id == "W3") return {"W3"};
    if (id == "W6") return {"W6"};
    if (id == "IDLE") return {"IDLE"};
    return {"MEM"};
}

void run([[maybe_unused]] const std::string& id, const std::string& lib) {
    [[maybe_unused]] const std::size_t n_w1 = size_n(1'000'000, 2'000), n_w3 = size_n(100'000, 200), n_w5 = size_n(100'000, 1'000);
    if (lib == "bs") {
#ifdef PYPOOL_PEER_HAVE_BS
        if (id == "W1") w1_bs(n_w1);
        if (id == "W2") w2_bs(n_w1);
        if (id == "W3") w3_bs(n_w3);
        if (id == "W5") w5_bs(n_w5);
        if (id == "W6") // A task blocked on a child's std::future holds its thread and BS has no helping wait: with
            // 2 threads the tree deadlocks at depth 2, as asio's does in pypool-bench.
            note("W6", "bs", "deadlock (not run)");
        if (id == "W7") {
            note("W7a", "bs", "n/a (no completion-order API)");
            note("W7b", "bs", "n/a (no completion-order API)");
        }
        if (id == "IDLE") idle_bs();
        if (id == "MEM") mem_bs(n_w1);
#endif
    } else if (lib == "taskflow") {
#ifdef PYPOOL_PEER_HAVE_TASKFLOW
        if (id == "W1") w1_taskflow(n_w1);
        if (id == "W2") w2_taskflow(n_w1);
        if (id == "W3") w3_taskflow(n_w3);
        if (id == "W5") w5_taskflow(n_w5);
        if (id == "W6") w6_taskflow();
        if (id == "W7") {
            note("W7a", "taskflow", "n/a (no completion-order API)");
            note("W7b", "taskflow", "n/a (no completion-order API)");
        }
        if (id == "IDLE") idle_taskflow();
        if (id == "MEM") mem_taskflow(n_w1);
#endif
    } else if (lib == "concurrencpp") {
#ifdef PYPOOL_PEER_HAVE_CONCURRENCPP
        if (id == "W1") w1_concurrencpp(n_w1);
        if (id == "W2") w2_concurrencpp(n_w1);
        if (id == "W3") w3_concurrencpp(n_w3);
        if (id == "W5") w5_concurrencpp(n_w5);
        if (id == "W6") w6_concurrencpp();
        if (id == "W7") {
            note("W7a", "concurrencpp", "n/a (no unordered-map API)");
            // when_any is the only completion-order primitive: one call per completion that re-arms
            // all remaining results, O(n^2) for n = 1M, so it is not run.
            note("W7b", "concurrencpp", "n/a (when_any only: O(n^2))");
        }
        if (id == "IDLE") idle_concurrencpp();
        if (id == "MEM") mem_concurrencpp(n_w1);
#endif
    }
}

void print_versions() {
#ifdef PYPOOL_PEER_HAVE_BS
    std::printf("# peer bs version %d.%d.%d (BS::thread_pool<>, 2 threads)%s%s\n", BS_THREAD_POOL_VERSION_MAJOR,
                BS_THREAD_POOL_VERSION_MINOR, BS_THREAD_POOL_VERSION_PATCH,
#ifdef PYPOOL_PEER_BS_SOURCE
                "; source ", PYPOOL_PEER_BS_SOURCE
#else
                "", ""
#endif
    );
#endif
#ifdef PYPOOL_PEER_HAVE_TASKFLOW
    std::printf("# peer taskflow version %d.%d.%d (tf::Executor(2))%s%s\n", TF_VERSION / 100000, TF_VERSION / 100 % 1000,
                TF_VERSION % 100,
#ifdef PYPOOL_PEER_TASKFLOW_SOURCE
                "; source ", PYPOOL_PEER_TASKFLOW_SOURCE
#else
                "", ""
#endif
    );
#endif
#ifdef PYPOOL_PEER_HAVE_CONCURRENCPP
    namespace cc = concurrencpp::details::consts;
    std::printf("# peer concurrencpp version %u.%u.%u (runtime thread_pool_executor, max_cpu_threads 2)%s%s\n",
                cc::k_concurrencpp_version_major, cc::k_concurrencpp_version_minor,
                cc::k_concurrencpp_version_revision,
#ifdef PYPOOL_PEER_CONCURRENCPP_SOURCE
                "; source ", PYPOOL_PEER_CONCURRENCPP_SOURCE
#else
                "", ""
#endif
    );
#endif
}

[[noreturn]] void usage(int code) {
    std::fprintf(code == 0 ? stdout : stderr,
                 "usage: peers-bench [--smoke] [--reps N] [--only W1,W3,...] [--scale F]\n"
                 "                   [--libs bs,taskflow,concurrencpp] [--idle-seconds S]\n"
                 "workloads: W1 W2 W3 W5 W6 W7 IDLE MEM (W4 and W8 are accepted and skipped)\n");
    std::exit(code);
}

bool selected(const std::string& id) {
    if (cfg.only.empty()) return true;
    if (cfg.only.count(id)) return true;
    for (const char* sub : reported_ids(id)) {
        if (cfg.only.count(sub)) return true;
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    cfg.libs = {"bs", "taskflow", "concurrencpp"};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(2);
            return argv[++i];
        };
        if (a == "--smoke") cfg.smoke = true;
        else if (a == "--reps") cfg.reps = std::max(1, std::atoi(value().c_str()));
        else if (a == "--scale") cfg.scale = std::atof(value().c_str());
        else if (a == "--idle-seconds") cfg.idle_seconds = std::atof(value().c_str());
        else if (a == "--only") cfg.only = split_list(value());
        else if (a == "--libs") cfg.libs = split_list(value());
        else if (a == "--help" || a == "-h") usage(0);
        else usage(2);
    }
    if (cfg.scale <= 0) usage(2);

    print_versions();
    // MEM first, as in pypool-bench: it reads the resident set, which later workloads grow.
    const std::vector<std::string> ids = {"MEM", "W1", "W2", "W3", "W5", "W6", "W7", "IDLE"};
    int failures = 0;
    for (int rep = 0; rep < cfg.reps; ++rep) {
        for (const auto& id : ids) {
            if (!selected(id)) continue;
            for (const auto& p : peers) {
                if (!cfg.libs.count(p.lib)) continue;
                if (!p.built) {
                    if (rep > 0) continue;
                    std::string text = std::string("missing (bench/peers/") + p.dir + " not found)";
                    for (const char* sub : reported_ids(id)) note(sub, p.lib, text.c_str());
                    continue;
                }
                try {
                    run(id, p.lib);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "FAIL %s %s %s\n", id.c_str(), p.lib, e.what());
                    ++failures;
                } catch (...) {
                    std::fprintf(stderr, "FAIL %s %s unknown exception\n", id.c_str(), p.lib);
                    ++failures;
                }
            }
        }
    }
    if (cfg.smoke) std::printf("# smoke: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
