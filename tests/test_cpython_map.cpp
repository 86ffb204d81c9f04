// Ports of CPython's Lib/test/_test_multiprocessing.py _TestPool cases for the bulk
// methods (ThreadPool flavour): test_map, test_starmap, test_starmap_async,
// test_map_async, test_map_async_callbacks, test_map_chunksize,
// test_map_handle_iterable_exception, test_imap, test_imap_handle_iterable_exception,
// test_imap_unordered, test_imap_unordered_handle_iterable_exception,
// test_empty_iterable, test_map_no_failfast.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <range/v3/view/iota.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "bulk_test_util.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using bulk_test::SayWhenError;
using bulk_test::ThrowingRange;

namespace {
int sqr(int x) { return x * x; }
int mul(int x, int y) { return x * y; }
std::vector<int> range_n(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
}
std::vector<int> sqrs(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(i * i);
    return v;
}
std::vector<std::tuple<int, int>> zip_down(int n) {  // zip(range(n), range(n-1, -1, -1))
    std::vector<std::tuple<int, int>> v;
    for (int i = 0; i < n; ++i) v.emplace_back(i, n - 1 - i);
    return v;
}
std::vector<int> starmapped(const std::vector<std::tuple<int, int>>& t) {
    std::vector<int> v;
    for (auto [a, b] : t) v.push_back(a * b);
    return v;
}
struct Fixture {
    pypool::ThreadPool pool{4};
    ~Fixture() {
        pool.terminate();
        pool.join();
    }
};
}  // namespace

BOOST_FIXTURE_TEST_SUITE(cpython_pool, Fixture)

BOOST_AUTO_TEST_CASE(test_map, *utf::timeout(60)) {
    BOOST_TEST(pool.map(sqr, range_n(10)) == sqrs(10));
    BOOST_TEST(pool.map(sqr, range_n(100), 20) == sqrs(100));
}

BOOST_AUTO_TEST_CASE(test_starmap, *utf::timeout(60)) {
    auto t = zip_down(10);
    BOOST_TEST(pool.starmap(mul, t) == starmapped(t));
    t = zip_down(100);
    BOOST_TEST(pool.starmap(mul, t, 20) == starmapped(t));
}

BOOST_AUTO_TEST_CASE(test_starmap_async, *utf::timeout(60)) {
    auto t = zip_down(100);
    BOOST_TEST(pool.starmap_async(mul, t).get() == starmapped(t));
}

BOOST_AUTO_TEST_CASE(test_map_async, *utf::timeout(60)) {
    BOOST_TEST(pool.map_async(sqr, range_n(10)).get() == sqrs(10));
}

BOOST_AUTO_TEST_CASE(test_map_async_callbacks, *utf::timeout(60)) {
    // call_args.append for both callbacks: a list of values or exceptions
    std::vector<std::variant<std::vector<int>, std::exception_ptr>> call_args;
    auto to_int = [](const std::string& s) { return std::stoi(s); };
    pool.map_async(to_int, std::vector<std::string>{"1"},
                   {.callback = [&](const std::vector<int>& v) { call_args.emplace_back(v); },
                    .error_callback = [&](std::exception_ptr e) { call_args.emplace_back(e); }})
        .wait();
    BOOST_TEST(call_args.size() == 1U);
    BOOST_TEST((std::get<0>(call_args[0]) == std::vector<int>{1}));
    pool.map_async(to_int, std::vector<std::string>{"a"},
                   {.callback = [&](const std::vector<int>& v) { call_args.emplace_back(v); },
                    .error_callback = [&](std::exception_ptr e) { call_args.emplace_back(e); }})
        .wait();
    BOOST_TEST(call_args.size() == 2U);
    BOOST_CHECK_THROW(std::rethrow_exception(std::get<1>(call_args[1])), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(test_map_chunksize, *utf::timeout(60)) {
    // must not stall on an empty list
    BOOST_CHECK_NO_THROW(pool.map_async(sqr, std::vector<int>{}, {.chunksize = 1}).get(1s));
}

BOOST_AUTO_TEST_CASE(test_map_handle_iterable_exception, *utf::timeout(60)) {
    BOOST_CHECK_THROW(pool.map(sqr, ThrowingRange(1, -1), 1), SayWhenError);
    BOOST_CHECK_THROW(pool.map(sqr, ThrowingRange(1, -1), 1), SayWhenError);  // reentrant
    BOOST_CHECK_THROW(pool.map(sqr, ThrowingRange(10, 3), 1), SayWhenError);
    // SpecialIterable: every next() raises
    BOOST_CHECK_THROW(pool.map(sqr, ThrowingRange(1, 0), 1), SayWhenError);
    BOOST_CHECK_THROW(pool.map(sqr, ThrowingRange(1, 0), 1), SayWhenError);
}

BOOST_AUTO_TEST_CASE(test_imap, *utf::timeout(60)) {
    auto it = pool.imap(sqr, range_n(10));
    std::vector<int> all;
    for (int x : it) all.push_back(x);
    BOOST_TEST(all == sqrs(10));

    auto it2 = pool.imap(sqr, range_n(10));
    for (int i = 0; i < 10; ++i) BOOST_TEST(*it2.next() == i * i);
    BOOST_TEST(!it2.next());  // StopIteration

    auto it3 = pool.imap(sqr, range_n(1000), 100);
    for (int i = 0; i < 1000; ++i) BOOST_TEST(*it3.next() == i * i);
    BOOST_TEST(!it3.next());
}

BOOST_AUTO_TEST_CASE(test_imap_handle_iterable_exception, *utf::timeout(60)) {
    auto it = pool.imap(sqr, ThrowingRange(1, -1), 1);
    BOOST_CHECK_THROW(it.next(), SayWhenError);
    auto it2 = pool.imap(sqr, ThrowingRange(1, -1), 1);
    BOOST_CHECK_THROW(it2.next(), SayWhenError);

    auto it3 = pool.imap(sqr, ThrowingRange(10, 3), 1);
    for (int i = 0; i < 3; ++i) BOOST_TEST(*it3.next() == i * i);
    BOOST_CHECK_THROW(it3.next(), SayWhenError);

    // Python loses the rest of the chunk holding position 7 (6 and 7 with chunksize 2, 4..7
    // with chunksize 4); pypool delivers every item before the failing position.
    auto it4 = pool.imap(sqr, ThrowingRange(20, 7), 2);
    for (int i = 0; i < 7; ++i) BOOST_TEST(*it4.next() == i * i);
    BOOST_CHECK_THROW(it4.next(), SayWhenError);
    auto it5 = pool.imap(sqr, ThrowingRange(20, 7), 4);
    for (int i = 0; i < 7; ++i) BOOST_TEST(*it5.next() == i * i);
    BOOST_CHECK_THROW(it5.next(), SayWhenError);
}

BOOST_AUTO_TEST_CASE(test_imap_unordered, *utf::timeout(60)) {
    std::vector<int> got;
    for (int x : pool.imap_unordered(sqr, range_n(10))) got.push_back(x);
    std::sort(got.begin(), got.end());
    BOOST_TEST(got == sqrs(10));
    got.clear();
    for (int x : pool.imap_unordered(sqr, range_n(1000), 100)) got.push_back(x);
    std::sort(got.begin(), got.end());
    BOOST_TEST(got == sqrs(1000));
}

BOOST_AUTO_TEST_CASE(test_imap_unordered_handle_iterable_exception, *utf::timeout(60)) {
    auto it = pool.imap_unordered(sqr, ThrowingRange(1, -1), 1);
    BOOST_CHECK_THROW(it.next(), SayWhenError);
    auto it2 = pool.imap_unordered(sqr, ThrowingRange(1, -1), 1);
    BOOST_CHECK_THROW(it2.next(), SayWhenError);

    for (auto [total_b, when_b, cs_b] : {std::tuple{10, 3, 1}, std::tuple{20, 7, 2}}) {
        const int total = total_b, when = when_b, cs = cs_b;  // lambdas capture these
        auto it3 = pool.imap_unordered(sqr, ThrowingRange(total, when), static_cast<std::size_t>(cs));
        auto expected = sqrs(total);
        auto consume = [&] {
            for (int i = 0; i < total; ++i) {
                int value = *it3.next();
                auto pos = std::find(expected.begin(), expected.end(), value);
                BOOST_TEST((pos != expected.end()));
                expected.erase(pos);
            }
        };
        BOOST_CHECK_THROW(consume(), SayWhenError);
    }
}

BOOST_AUTO_TEST_CASE(test_empty_iterable, *utf::timeout(60)) {
    pypool::ThreadPool p(1);
    BOOST_TEST(p.map(sqr, std::vector<int>{}).empty());
    std::vector<int> got;
    for (int x : p.imap(sqr, std::vector<int>{})) got.push_back(x);
    for (int x : p.imap_unordered(sqr, std::vector<int>{})) got.push_back(x);
    BOOST_TEST(got.empty());
    BOOST_TEST(p.map_async(sqr, std::vector<int>{}).get().empty());
    p.close();
    p.join();
}

BOOST_AUTO_TEST_CASE(test_map_no_failfast, *utf::timeout(60)) {
    // Every item runs although one fails early; join() then finds nothing left behind.
    pypool::ThreadPool p(2);
    std::atomic<int> finished{0};
    auto raise_large_valueerror = [&](double wait) -> int {
        std::this_thread::sleep_for(std::chrono::duration<double>(wait));  // task duration only
        ++finished;
        throw std::invalid_argument(std::string(1024 * 1024, 'x'));
    };
    BOOST_CHECK_THROW(p.map(raise_large_valueerror, std::vector<double>{0, 0.1}), std::invalid_argument);
    BOOST_TEST(finished.load() == 2);
    p.close();
    p.join();
}

BOOST_AUTO_TEST_SUITE_END()
