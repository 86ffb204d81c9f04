// Building a ThreadPool: size, ValueError for bad sizes, the initializer, thread names.
#include <boost/test/unit_test.hpp>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pypool/pypool.hpp>

#include "thread_count.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace {

using test_threads::thread_count;
using test_threads::thread_count_settled;

std::string current_thread_name() {
    char buf[64] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    return buf;
}

template <class Fn>
void check_value_error(Fn&& fn, const std::string& message) {
    try {
        fn();
        BOOST_FAIL("no ValueError thrown");
    } catch (const pypool::ValueError& e) {
        BOOST_TEST(std::string(e.what()) == message);
    }
}

// Runs one task on each of the pool's n workers (a barrier of n keeps each on its own
// worker) and returns the worker names seen.
std::set<std::string> worker_names(pypool::ThreadPool& pool) {
    const auto n = static_cast<std::ptrdiff_t>(pool.size());
    std::barrier sync(n);
    std::mutex m;
    std::set<std::string> names;
    std::vector<pypool::AsyncResult<void>> rs;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        rs.push_back(pool.apply_async([&] {
            {
                std::lock_guard lk(m);
                names.insert(current_thread_name());
            }
            sync.arrive_and_wait();
        }));
    }
    for (auto& r : rs) r.get();
    return names;
}

std::string loop_name(pypool::ThreadPool& pool) {
    std::string name;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] { name = current_thread_name(); }}).get();
    return name;  // the callback's side effect is visible once get() returned
}

}  // namespace

BOOST_AUTO_TEST_CASE(default_size_is_hardware_concurrency_at_least_one, *utf::timeout(60)) {
    const std::size_t expected = std::max(1U, std::thread::hardware_concurrency());
    pypool::ThreadPool pool;
    BOOST_TEST(pool.size() == expected);
    pypool::ThreadPool from_options(pypool::PoolOptions{});
    BOOST_TEST(from_options.size() == expected);
}

BOOST_AUTO_TEST_CASE(explicit_size_is_kept, *utf::timeout(60)) {
    pypool::ThreadPool one(1);
    BOOST_TEST(one.size() == 1U);
    pypool::ThreadPool five(pypool::PoolOptions{.processes = 5});
    BOOST_TEST(five.size() == 5U);
}

BOOST_AUTO_TEST_CASE(zero_processes_throws_value_error) {
    check_value_error([] { pypool::ThreadPool pool(0); }, "Number of processes must be at least 1");
}

BOOST_AUTO_TEST_CASE(zero_processes_in_options_throws_value_error) {
    check_value_error([] { pypool::ThreadPool pool(pypool::PoolOptions{.processes = 0}); },
                      "Number of processes must be at least 1");
}

BOOST_AUTO_TEST_CASE(negative_processes_throws_value_error) {
    check_value_error([] { pypool::ThreadPool pool(-3); }, "Number of processes must be at least 1");
    check_value_error([] { pypool::ThreadPool pool(pypool::PoolOptions{.processes = -1}); },
                      "Number of processes must be at least 1");
}

BOOST_AUTO_TEST_CASE(bad_size_starts_no_thread, *utf::timeout(60)) {
    const std::size_t before = thread_count();
    BOOST_CHECK_THROW(pypool::ThreadPool(0), pypool::ValueError);
    BOOST_TEST(thread_count_settled(before) <= before);
}

BOOST_AUTO_TEST_CASE(pool_starts_workers_plus_one_callback_thread_and_ends_them,
                     *utf::timeout(60)) {
    const std::size_t before = thread_count();
    {
        pypool::ThreadPool pool(3);
        BOOST_TEST(thread_count() == before + 4);
    }
    BOOST_TEST(thread_count_settled(before) <= before);
}

namespace {
thread_local int initializer_runs = 0;
}

BOOST_AUTO_TEST_CASE(initializer_runs_once_in_every_worker_before_its_first_task,
                     *utf::timeout(60)) {
    std::mutex m;
    std::map<std::thread::id, int> runs_per_thread;
    std::atomic<int> tasks_seeing_uninitialised{0};
    std::atomic<int> tasks_seeing_double_init{0};
    constexpr int n = 4;
    {
        pypool::ThreadPool pool(pypool::PoolOptions{
            .processes = n, .initializer = [&] {
                ++initializer_runs;
                std::lock_guard lk(m);
                ++runs_per_thread[std::this_thread::get_id()];
            }});
        // Every worker has run its initializer once the constructor returned.
        {
            std::lock_guard lk(m);
            BOOST_TEST(runs_per_thread.size() == static_cast<std::size_t>(n));
        }
        std::barrier sync(n);
        std::vector<pypool::AsyncResult<void>> rs;
        for (int i = 0; i < 200; ++i) {
            const bool all_workers = i < n;  // the first n tasks meet on all n workers
            rs.push_back(pool.apply_async([&, all_workers] {
                if (initializer_runs == 0) ++tasks_seeing_uninitialised;
                if (initializer_runs > 1) ++tasks_seeing_double_init;
                if (all_workers) sync.arrive_and_wait();
            }));
        }
        for (auto& r : rs) r.get();
    }
    BOOST_TEST(tasks_seeing_uninitialised.load() == 0);
    BOOST_TEST(tasks_seeing_double_init.load() == 0);
    BOOST_TEST(runs_per_thread.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : runs_per_thread) BOOST_TEST(count == 1);
    BOOST_TEST(initializer_runs == 0);  // the test thread is no worker
}

BOOST_AUTO_TEST_CASE(initializer_does_not_run_on_the_callback_thread, *utf::timeout(60)) {
    std::atomic<int> calls{0};
    int runs_seen_by_callback = -1;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .initializer = [&] {
                                                   ++initializer_runs;
                                                   ++calls;
                                               }});
    pool.apply_async([] {}, std::tuple{},
                     {.callback = [&] { runs_seen_by_callback = initializer_runs; }})
        .get();
    BOOST_TEST(runs_seen_by_callback == 0);
    BOOST_TEST(calls.load() == 2);
}

BOOST_AUTO_TEST_CASE(throwing_initializer_makes_constructor_throw_it, *utf::timeout(60)) {
    const std::size_t before = thread_count();
    try {
        pypool::ThreadPool pool(pypool::PoolOptions{
            .processes = 3, .initializer = [] { throw std::runtime_error("init failed"); }});
        BOOST_FAIL("constructor did not throw");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()) == "init failed");
    }
    BOOST_TEST(thread_count_settled(before) <= before);
}

BOOST_AUTO_TEST_CASE(initializer_throwing_non_std_exception_is_rethrown, *utf::timeout(60)) {
    const std::size_t before = thread_count();
    try {
        pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .initializer = [] { throw 42; }});
        BOOST_FAIL("constructor did not throw");
    } catch (int v) {
        BOOST_TEST(v == 42);
    }
    BOOST_TEST(thread_count_settled(before) <= before);
}

BOOST_AUTO_TEST_CASE(initializer_throwing_in_one_worker_only_stops_every_thread,
                     *utf::timeout(60)) {
    const std::size_t before = thread_count();
    std::atomic<int> calls{0};
    BOOST_CHECK_THROW(pypool::ThreadPool(pypool::PoolOptions{
                          .processes = 4, .initializer = [&] {
                              if (calls.fetch_add(1) == 2) throw std::logic_error("third worker");
                          }}),
                      std::logic_error);
    BOOST_TEST(calls.load() >= 3);
    BOOST_TEST(thread_count_settled(before) <= before);
}

BOOST_AUTO_TEST_CASE(default_thread_names_are_pypool_index_and_pypool_loop, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    const std::set<std::string> expected{"pypool-0", "pypool-1", "pypool-2"};
    BOOST_TEST(worker_names(pool) == expected);
    BOOST_TEST(loop_name(pool) == "pypool-loop");
}

BOOST_AUTO_TEST_CASE(custom_prefix_names_workers_and_callback_thread, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .thread_name_prefix = "crawl"});
    const std::set<std::string> expected{"crawl-0", "crawl-1"};
    BOOST_TEST(worker_names(pool) == expected);
    BOOST_TEST(loop_name(pool) == "crawl-loop");
}

BOOST_AUTO_TEST_CASE(long_prefix_is_cut_to_fit_fifteen_bytes, *utf::timeout(60)) {
    pypool::ThreadPool pool(
        pypool::PoolOptions{.processes = 12, .thread_name_prefix = "averyveryverylongprefix"});
    const auto names = worker_names(pool);
    BOOST_TEST(names.size() == 12U);
    BOOST_TEST(names.count("averyveryvery-0") == 1U);   // 13 + 2 bytes
    BOOST_TEST(names.count("averyveryver-11") == 1U);   // 12 + 3 bytes
    for (const auto& n : names) BOOST_TEST(n.size() <= 15U);
    BOOST_TEST(loop_name(pool) == "averyveryv-loop");  // 10 + 5 bytes
}

BOOST_AUTO_TEST_CASE(multibyte_prefix_is_cut_at_a_character_boundary, *utf::timeout(60)) {
    // "é" is 2 bytes: 7 of them are 14 bytes; "日" etc. are 3 bytes.
    pypool::ThreadPool two_byte(
        pypool::PoolOptions{.processes = 1, .thread_name_prefix = "ééééééé"});
    BOOST_TEST(worker_names(two_byte) == std::set<std::string>{"éééééé-0"});  // 12 + 2 bytes
    BOOST_TEST(loop_name(two_byte) == "ééééé-loop");                          // 10 + 5 bytes

    pypool::ThreadPool three_byte(
        pypool::PoolOptions{.processes = 1, .thread_name_prefix = "日本語日本語"});
    BOOST_TEST(worker_names(three_byte) == std::set<std::string>{"日本語日-0"});  // 12 + 2
    BOOST_TEST(loop_name(three_byte) == "日本語-loop");                          // 9 + 5
}

BOOST_AUTO_TEST_CASE(empty_prefix_gives_bare_suffix_names, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1, .thread_name_prefix = ""});
    BOOST_TEST(worker_names(pool) == std::set<std::string>{"-0"});
    BOOST_TEST(loop_name(pool) == "-loop");
}
