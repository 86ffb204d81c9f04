// imap_unordered: completion order, per-item failures, laziness, lifecycle.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/take.hpp>
#include <range/v3/range/conversion.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bulk_test_util.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::ThreadPool;

namespace {
int sqr(int x) { return x * x; }
std::vector<int> squares(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(i * i);
    return v;
}
std::vector<int> sorted(std::vector<int> v) {
    std::sort(v.begin(), v.end());
    return v;
}
}  // namespace

BOOST_AUTO_TEST_CASE(imap_unordered_yields_every_result, *utf::timeout(60)) {
    ThreadPool pool(4);
    for (std::size_t cs : {1, 3, 100}) {
        std::vector<int> got;
        for (int x : pool.imap_unordered(sqr, ranges::views::iota(0, 300), cs)) got.push_back(x);
        BOOST_TEST(sorted(got) == squares(300));
    }
    auto it = pool.imap_unordered(sqr, {1, 2, 3}, pypool::IMapOptions{.chunksize = 2});
    std::vector<int> got;
    while (auto x = it.next()) got.push_back(*x);
    BOOST_TEST(sorted(got) == (std::vector<int>{1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(imap_unordered_yields_in_completion_order, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch second_seen(1);
    auto it = pool.imap_unordered([&](int x) { if (x == 0) second_seen.wait(); return x; }, {0, 1});
    BOOST_TEST(*it.next() == 1);  // item 0 waits until item 1 was delivered
    second_seen.count_down();
    BOOST_TEST(*it.next() == 0);
    BOOST_TEST(!it.next());
}

BOOST_AUTO_TEST_CASE(imap_unordered_failing_item_throws_when_it_arrives_and_continues,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap_unordered(
        [](int x) { if (x % 4 == 1) throw std::runtime_error("bad"); return x; },
        ranges::views::iota(0, 20), 3);
    int errors = 0;
    std::vector<int> got;
    for (;;) {
        try {
            auto x = it.next();
            if (!x) break;
            got.push_back(*x);
        } catch (const std::runtime_error&) {
            ++errors;
        }
    }
    BOOST_TEST(errors == 5);  // 1, 5, 9, 13, 17
    BOOST_TEST(got.size() == 15U);
}

BOOST_AUTO_TEST_CASE(imap_unordered_input_that_throws_yields_earlier_results_then_error,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    for (std::size_t cs : {1, 2, 4}) {
        auto it = pool.imap_unordered(sqr, bulk_test::ThrowingRange(20, 7), cs);
        std::vector<int> got;
        for (int i = 0; i < 7; ++i) got.push_back(*it.next());
        BOOST_TEST(sorted(got) == squares(7));
        BOOST_CHECK_THROW(it.next(), bulk_test::SayWhenError);
        BOOST_TEST(!it.next());
    }
}

BOOST_AUTO_TEST_CASE(imap_unordered_reads_ahead_exactly_max_in_flight_chunks, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto stats = std::make_shared<bulk_test::ReadStats>();
    const long mif = 5;
    auto it = pool.imap_unordered([](long x) { return x; }, bulk_test::InstrumentedRange(stats),
                                  pypool::IMapOptions{.chunksize = 1, .max_in_flight = 5});
    BOOST_TEST(stats->read.load() == mif);
    for (long i = 1; i <= 300; ++i) {
        (void)it.next();
        BOOST_TEST(stats->read.load() == i + mif);
    }
    BOOST_TEST(!stats->overlap.load());
}

BOOST_AUTO_TEST_CASE(imap_unordered_endless_input_with_take, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap_unordered(sqr, ranges::views::iota(0), 2);
    auto got = it | ranges::views::take(6) | ranges::to<std::vector>();
    BOOST_TEST(got.size() == 6U);
}

BOOST_AUTO_TEST_CASE(imap_unordered_early_destruction_returns_and_stops_work, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<long> calls{0};
    std::atomic<int> running{0};
    {
        auto it = pool.imap_unordered([&](int x) {
            ++running;
            ++calls;
            std::this_thread::sleep_for(1ms);  // makes chunks last; order does not depend on it
            --running;
            return x;
        }, ranges::views::iota(0), pypool::IMapOptions{.chunksize = 3, .max_in_flight = 6});
        for (int i = 0; i < 4; ++i) (void)it.next();
    }
    BOOST_TEST(running.load() == 0);
    const long after = calls.load();
    pool.close();
    pool.join();
    BOOST_TEST(calls.load() == after);
}

BOOST_AUTO_TEST_CASE(imap_unordered_with_a_huge_chunksize_yields_the_items, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> got;
    for (int x : pool.imap_unordered([](int x) { return x * x; }, std::vector{1, 2, 3},
                                     std::size_t{1} << 40))
        got.push_back(x);
    std::sort(got.begin(), got.end());
    BOOST_TEST(got == (std::vector{1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(imap_unordered_close_join_then_iterate, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap_unordered(sqr, ranges::views::iota(0, 64), pypool::IMapOptions{.max_in_flight = 1});
    pool.close();
    pool.join();
    std::vector<int> got;
    for (int x : it) got.push_back(x);
    BOOST_TEST(sorted(got) == squares(64));
}

BOOST_AUTO_TEST_CASE(imap_unordered_terminate_yields_computed_then_cancelled_once,
                     *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto it = pool.imap_unordered([&](int x) {
        if (x == 1) { started.count_down(); gate.wait(); }
        return x;
    }, ranges::views::iota(0, 100), pypool::IMapOptions{.max_in_flight = 4});
    started.wait();   // item 1 runs; 2 and 3 are queued
    pool.terminate();  // cancels 2 and 3; 4.. are left unread
    gate.count_down();
    pool.join();
    std::vector<int> got;
    int cancelled = 0;
    for (;;) {
        try {
            auto x = it.next();
            if (!x) break;
            got.push_back(*x);
        } catch (const pypool::CancelledError&) {
            ++cancelled;
        }
    }
    BOOST_TEST(sorted(got) == (std::vector<int>{0, 1}));
    BOOST_TEST(cancelled == 1);
}
