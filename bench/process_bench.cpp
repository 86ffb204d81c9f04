// process-bench: the process pool workloads of issue 12 on pypool::ProcessPool(2) (and, for
// P3, pypool::ThreadPool(2) on the same work). bench/python_process_pool.py runs the same
// workloads on Python's ProcessPoolExecutor(2), multiprocessing.Pool(2) and pebble's
// ProcessPool(2); scripts/bench --process runs both and prints ratios.
//
//   P1  submit + result of a trivial task, 100,000 tasks (all submitted, then all read): tasks/s
//   P2  apply round trip (one task at a time): p50 and p99 in microseconds
//   P3  map over 1,000,000 ints, default chunksize: items/s (and seconds); also ThreadPool.map
//   P4  pool start to first result, and worker crash to replacement ready (the next task's
//       result after a segfault), per start method: milliseconds
//
// Output: RESULT <workload> <library> <metric> <value> and NOTE <workload> <library> <text>,
// as pypool-bench. --smoke runs every workload tiny (about a second), checks the results
// (never timings) and, with --junit FILE, writes one JUnit <testcase> per workload.

#include <utility>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

#include "bench_common.hpp"

using namespace pypool_bench;

namespace {

// ---- the tasks (run in the worker processes) --------------------------------------------------

int trivial(int x) { return x + 1; }
long long square(int x) { return static_cast<long long>(x) * x; }
int crash(int) {
    std::signal(SIGSEGV, SIG_DFL);
    volatile int* p = nullptr;
    return *p;
}

pypool::ProcessPoolOptions two(pypool::StartMethod m = pypool::StartMethod::forkserver) {
    pypool::ProcessPoolOptions o;
    o.processes = 2;
    o.start_method = m;
    return o;
}
void warm(pypool::ProcessPool& pool) {
    std::vector<pypool::AsyncResult<int>> rs;
    for (int i = 0; i < 100; ++i) rs.push_back(pool.submit(trivial, i));
    for (auto& r : rs) r.get();
}

// ---- workloads ------------------------------------------------------------------------------

void p1() {
    const std::size_t n = size_n(100'000, 200);
    pypool::ProcessPool pool(two());
    warm(pool);
    std::vector<pypool::AsyncResult<int>> rs;
    rs.reserve(n);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i) rs.push_back(pool.submit(trivial, static_cast<int>(i)));
    long long sum = 0;
    for (auto& r : rs) sum += r.get();
    const double t = seconds_since(t0);
    const auto nn = static_cast<long long>(n);
    check(sum == nn * (nn + 1) / 2, "P1 sum");
    result("P1", "pypool", "rate", static_cast<double>(n) / t);
}

void p2() {
    const std::size_t n = size_n(5'000, 100);
    pypool::ProcessPool pool(two());
    warm(pool);
    std::vector<double> us;
    us.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        const int v = pool.apply(trivial, std::tuple{static_cast<int>(i)});
        us.push_back(seconds_since(t0) * 1e6);
        check(v == static_cast<int>(i) + 1, "P2 value");
    }
    std::sort(us.begin(), us.end());
    result("P2", "pypool", "p50_us", us[us.size() / 2]);
    result("P2", "pypool", "p99_us", us[std::min(us.size() - 1, us.size() * 99 / 100)]);
}

template <class Pool>
void p3_on(Pool& pool, const char* lib, const std::vector<int>& xs) {
    const auto t0 = Clock::now();
    const auto ys = pool.map(square, xs);
    const double t = seconds_since(t0);
    check(ys.size() == xs.size(), "P3 size");
    for (std::size_t i = 0; i < xs.size(); i += 997) check(ys[i] == square(xs[i]), "P3 value");
    result("P3", lib, "rate", static_cast<double>(xs.size()) / t);
    result("P3", lib, "time_s", t);
}

void p3() {
    std::vector<int> xs(size_n(1'000'000, 2'000));
    std::iota(xs.begin(), xs.end(), 0);
    {
        pypool::ProcessPool pool(two());
        warm(pool);
        p3_on(pool, "pypool", xs);
    }
    {
        pypool::ThreadPool pool(2);
        (void)pool.map(square, std::vector<int>(100, 1));
        p3_on(pool, "pypool-thread", xs);
    }
}

void p4() {
    const int rounds = cfg.smoke ? 1 : 5;
    for (auto m : {pypool::StartMethod::forkserver, pypool::StartMethod::spawn, pypool::StartMethod::fork}) {
        const std::string name = m == pypool::StartMethod::forkserver ? "forkserver"
                                 : m == pypool::StartMethod::spawn    ? "spawn"
                                                                      : "fork";
        std::vector<double> start_ms, crash_ms;
        for (int r = 0; r < rounds; ++r) {
            const auto t0 = Clock::now();
            {
                pypool::ProcessPool pool(two(m));
                check(pool.apply(trivial, std::tuple{1}) == 2, "P4 first result");
                start_ms.push_back(seconds_since(t0) * 1e3);
            }
            // one worker: the task after the crash runs on its replacement
            auto o = two(m);
            o.processes = 1;
            pypool::ProcessPool pool(o);
            warm(pool);
            const auto t1 = Clock::now();
            auto bad = pool.submit(crash, 0);
            bool broken = false;
            try {
                bad.get();
            } catch (const pypool::BrokenProcessPool&) {
                broken = true;
            }
            check(broken, "P4 crash gives BrokenProcessPool");
            check(pool.apply(trivial, std::tuple{2}) == 3, "P4 after crash");
            crash_ms.push_back(seconds_since(t1) * 1e3);
        }
        std::sort(start_ms.begin(), start_ms.end());
        std::sort(crash_ms.begin(), crash_ms.end());
        result("P4", "pypool", ("start_ms_" + name).c_str(), start_ms[start_ms.size() / 2]);
        result("P4", "pypool", ("crash_ms_" + name).c_str(), crash_ms[crash_ms.size() / 2]);
    }
}

struct Workload {
    std::string id;
    void (*run)();
};

[[noreturn]] void usage(int code) {
    std::fprintf(code == 0 ? stdout : stderr,
                 "usage: process-bench [--smoke] [--junit FILE] [--reps N] [--only P1,P3,...] [--scale F]\n"
                 "workloads: P1 P2 P3 P4\n");
    std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);  // workers and the fork server re-execute this program
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(2);
            return argv[++i];
        };
        if (a == "--smoke") cfg.smoke = true;
        else if (a == "--junit") cfg.junit = value();
        else if (a == "--reps") cfg.reps = std::max(1, std::atoi(value().c_str()));
        else if (a == "--scale") cfg.scale = std::atof(value().c_str());
        else if (a == "--only") {
            std::stringstream ss(value());
            for (std::string w; std::getline(ss, w, ',');) cfg.only.insert(w);
        } else if (a == "--idle-seconds") (void)value();  // accepted for scripts/bench's common flags
        else if (a == "--help" || a == "-h") usage(0);
        else usage(2);
    }
    if (cfg.scale <= 0) usage(2);
    std::printf("# process-bench: ProcessPool(2) (forkserver unless named), P3 also ThreadPool(2); pid %d\n",
                static_cast<int>(::getpid()));
    const std::vector<Workload> ws{{"P1", p1}, {"P2", p2}, {"P3", p3}, {"P4", p4}};
    std::vector<CaseOutcome> outcomes;
    int failures = 0;
    for (const auto& w : ws)
        if (cfg.only.empty() || cfg.only.count(w.id)) outcomes.push_back({w.id, 0, {}});
    for (int rep = 0; rep < cfg.reps; ++rep) {
        for (auto& oc : outcomes) {
            const auto& w = *std::find_if(ws.begin(), ws.end(), [&](const Workload& x) { return x.id == oc.id; });
            const auto t0 = Clock::now();
            try {
                w.run();
            } catch (const std::exception& e) {
                oc.failures.push_back(e.what());
                std::fprintf(stderr, "FAIL %s pypool %s\n", w.id.c_str(), e.what());
                ++failures;
            } catch (...) {
                oc.failures.push_back("unknown exception");
                std::fprintf(stderr, "FAIL %s pypool unknown exception\n", w.id.c_str());
                ++failures;
            }
            oc.seconds += seconds_since(t0);
        }
    }
    if (!cfg.junit.empty() && !write_junit(cfg.junit, "process_bench_smoke", outcomes)) {
        std::fprintf(stderr, "process-bench: cannot write %s\n", cfg.junit.c_str());
        return 1;
    }
    if (cfg.smoke) std::printf("# smoke: %zu workloads, %d failures\n", outcomes.size(), failures);
    return failures == 0 ? 0 : 1;
}
