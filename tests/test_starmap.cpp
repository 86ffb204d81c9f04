// starmap and starmap_async.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/transform.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bulk_test_util.hpp"

namespace utf = boost::unit_test;
using pypool::ThreadPool;

namespace {
int mul(int a, int b) { return a * b; }
}  // namespace

BOOST_AUTO_TEST_CASE(starmap_applies_the_function_to_each_tuple_in_order, *utf::timeout(60)) {
    ThreadPool pool(4);
    std::vector<std::tuple<int, int>> in;
    std::vector<int> want;
    for (int i = 0; i < 100; ++i) {
        in.emplace_back(i, 99 - i);
        want.push_back(i * (99 - i));
    }
    BOOST_TEST(pool.starmap(mul, in) == want);
    BOOST_TEST(pool.starmap(mul, in, 20) == want);
    BOOST_TEST(pool.starmap_async(mul, in).get() == want);
}

BOOST_AUTO_TEST_CASE(starmap_takes_pairs_arrays_and_views, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::pair<std::string, int>> pairs{{"a", 2}, {"b", 3}};
    auto rep = [](const std::string& s, int n) {
        std::string r;
        for (int i = 0; i < n; ++i) r += s;
        return r;
    };
    BOOST_TEST(pool.starmap(rep, pairs) == (std::vector<std::string>{"aa", "bbb"}));
    auto view = ranges::views::iota(0, 5) |
                ranges::views::transform([](int i) { return std::tuple{i, i}; });
    BOOST_TEST(pool.starmap(mul, view) == (std::vector<int>{0, 1, 4, 9, 16}));
    std::vector<std::array<int, 2>> arrs{{2, 3}};
    BOOST_TEST(pool.starmap(mul, arrs) == std::vector<int>{6});
}

BOOST_AUTO_TEST_CASE(starmap_moves_tuples_of_an_rvalue_container, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::tuple<std::unique_ptr<int>, int>> in;
    in.emplace_back(std::make_unique<int>(3), 4);
    in.emplace_back(std::make_unique<int>(5), 6);
    auto out = pool.starmap([](std::unique_ptr<int> p, int k) { return std::make_unique<int>(*p * k); },
                            std::move(in));
    BOOST_TEST(*out[0] == 12);
    BOOST_TEST(*out[1] == 30);
}

BOOST_AUTO_TEST_CASE(starmap_of_a_void_function_yields_none, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<int> sum{0};
    std::vector<std::tuple<int, int>> in{{1, 2}, {3, 4}};
    std::vector<pypool::None> out = pool.starmap([&](int a, int b) { sum += a + b; }, in);
    BOOST_TEST(out.size() == 2U);
    BOOST_TEST(sum.load() == 10);
}

BOOST_AUTO_TEST_CASE(starmap_failure_reports_the_lowest_failing_position, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::tuple<int, int>> in;
    for (int i = 0; i < 50; ++i) in.emplace_back(i, 1);
    std::atomic<int> ran{0};
    auto f = [&](int a, int) {
        ++ran;
        if (a == 10 || a == 40) throw std::runtime_error(std::to_string(a));
        return a;
    };
    BOOST_CHECK_EXCEPTION(pool.starmap(f, in, 7), std::runtime_error,
                          [](const std::runtime_error& e) { return std::string(e.what()) == "10"; });
    BOOST_TEST(ran.load() == 50);
}

BOOST_AUTO_TEST_CASE(starmap_async_callbacks_run_on_the_callback_thread, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::tuple<int, int>> in{{2, 3}, {4, 5}};
    std::vector<int> seen;
    std::string thread;
    auto r = pool.starmap_async(mul, in, {.callback = [&](const std::vector<int>& v) {
        seen = v;
        thread = bulk_test::thread_name();
    }});
    BOOST_TEST(r.get() == (std::vector<int>{6, 20}));
    BOOST_TEST(seen == (std::vector<int>{6, 20}));
    BOOST_TEST(thread == "pypool-loop");
    BOOST_TEST(r.total() == 2U);
    BOOST_TEST(r.completed() == 2U);
    std::exception_ptr err;
    auto bad = pool.starmap_async([](int, int) -> int { throw 3; }, in,
                                  {.error_callback = [&](std::exception_ptr e) { err = e; }});
    bad.wait();
    BOOST_CHECK_THROW(std::rethrow_exception(err), int);
    BOOST_CHECK_THROW(bad.get(), int);
}

BOOST_AUTO_TEST_CASE(starmap_of_empty_input, *utf::timeout(60)) {
    ThreadPool pool(2);
    BOOST_TEST(pool.starmap(mul, std::vector<std::tuple<int, int>>{}).empty());
    auto r = pool.starmap_async(mul, std::vector<std::tuple<int, int>>{});
    BOOST_TEST(r.ready());
    BOOST_TEST(r.get().empty());
}
