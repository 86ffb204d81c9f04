// Ranges (issue 13): map, map_async, imap, imap_unordered, starmap, wait and as_completed
// take any range that the standard library or range-v3 calls an input range: range-v3's
// iota over every integer type (over long or std::size_t it is not a std::ranges::range),
// transform, filter, join, chunk, generate | take, istream_view, and the std counterparts.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <numeric>
#include <ranges>
#include <sstream>
#include <tuple>
#include <vector>

#include <range/v3/algorithm/equal.hpp>
#include <range/v3/numeric/accumulate.hpp>
#include <range/v3/view/all.hpp>
#include <range/v3/view/chunk.hpp>
#include <range/v3/view/filter.hpp>
#include <range/v3/view/generate.hpp>
#include <range/v3/view/iota.hpp>
#include <range/v3/view/istream.hpp>
#include <range/v3/view/join.hpp>
#include <range/v3/view/take.hpp>
#include <range/v3/view/transform.hpp>
#include <range/v3/view/zip.hpp>

#include <pypool/pypool.hpp>

// clang 14 cannot compile libstdc++ 12's std::views adaptors at all (a toolchain
// incompatibility, not pypool's): the std counterparts are checked with g++ (and newer clang).
#if defined(__clang__) && __clang_major__ < 15
#define PYPOOL_STD_VIEWS 0
#else
#define PYPOOL_STD_VIEWS 1
#endif

namespace utf = boost::unit_test;
using pypool::ThreadPool;

namespace {

/// Runs map, map_async, imap and imap_unordered of f over ranges made by make() (a fresh
/// range per call: single-pass ones are used up), as rvalues and as lvalues, and checks
/// each against expected (imap_unordered: the same items in any order).
template <class Make, class F, class R>
void check_every_form(ThreadPool& pool, Make make, F f, const std::vector<R>& expected) {
    auto sorted_expected = expected;
    std::sort(sorted_expected.begin(), sorted_expected.end());
    auto check_unordered = [&](std::vector<R> got) {
        std::sort(got.begin(), got.end());
        BOOST_TEST(got == sorted_expected);
    };
    auto collect = [](auto&& it) {
        std::vector<R> out;
        for (auto&& v : it) out.push_back(v);
        return out;
    };
    BOOST_TEST(pool.map(f, make()) == expected);
    BOOST_TEST(pool.map(f, make(), 2) == expected);
    BOOST_TEST(pool.map_async(f, make()).get() == expected);
    BOOST_TEST(collect(pool.imap(f, make())) == expected);
    BOOST_TEST(collect(pool.imap(f, make(), 3)) == expected);
    check_unordered(collect(pool.imap_unordered(f, make())));
    check_unordered(collect(pool.imap_unordered(f, make(), pypool::IMapOptions{.chunksize = 2})));
    {
        auto r = make();
        BOOST_TEST(pool.map(f, r) == expected);
    }
    {
        auto r = make();
        BOOST_TEST(pool.map_async(f, r).get() == expected);
    }
    {
        auto r = make();
        BOOST_TEST(collect(pool.imap(f, r)) == expected);
    }
    {
        auto r = make();
        check_unordered(collect(pool.imap_unordered(f, r, 2)));
    }
}

template <class T>
std::vector<T> squares_below(T n) {
    std::vector<T> out;
    for (T i = 0; i < n; ++i) out.push_back(static_cast<T>(i * i));
    return out;
}

// (std::int64_t and std::size_t are long and unsigned long here)
using integer_types = boost::mpl::list<signed char, unsigned char, short, unsigned short, int,
                                       unsigned, long, unsigned long, long long,
                                       unsigned long long>;

}  // namespace

BOOST_AUTO_TEST_SUITE(ranges)

BOOST_AUTO_TEST_CASE(map_imap_and_imap_unordered_take_range_v3_iota_of_long,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    auto sq = [](long x) { return x * x; };
    check_every_form(pool, [] { return ranges::views::iota(0L, 10L); }, sq, squares_below(10L));
    // endless iota: imap reads it lazily; map needs an end
    check_every_form(pool, [] { return ranges::views::iota(0L) | ranges::views::take(10); }, sq,
                     squares_below(10L));
    long sum = 0;
    for (long v : pool.imap(sq, ranges::views::iota(0L))) {
        if (v >= 100) break;
        sum += v;
    }
    BOOST_TEST(sum == 285L);
    long sum_unordered = 0;
    int seen = 0;
    for (long v : pool.imap_unordered(sq, ranges::views::iota(0L), 1)) {
        sum_unordered += v >= 0 ? 1 : 0;
        if (++seen == 20) break;
    }
    BOOST_TEST(sum_unordered == 20L);
}

BOOST_AUTO_TEST_CASE(map_takes_range_v3_iota_of_size_t, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::size_t n = 12;  // not const: captured (clang: a constant needs no capture)
    check_every_form(pool, [n] { return ranges::views::iota(std::size_t{0}, n); },
                     [](std::size_t x) { return x * x; }, squares_below(n));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(range_v3_iota_of_every_integer_type_is_accepted, T, integer_types) {
    ThreadPool pool(2);
    T n = 10;  // not const: captured (clang: a constant needs no capture)
    check_every_form(pool, [n] { return ranges::views::iota(T{0}, n); },
                     [](T x) { return static_cast<T>(x * x); }, squares_below(n));
}

#if PYPOOL_STD_VIEWS
BOOST_AUTO_TEST_CASE_TEMPLATE(std_iota_of_every_integer_type_is_accepted, T, integer_types) {
    ThreadPool pool(2);
    T n = 10;  // not const: captured (clang: a constant needs no capture)
    check_every_form(pool, [n] { return std::views::iota(T{0}, n); },
                     [](T x) { return static_cast<T>(x * x); }, squares_below(n));
}
#endif

BOOST_AUTO_TEST_CASE(range_v3_transform_filter_and_take_are_accepted, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> base{1, 2, 3, 4, 5, 6, 7, 8};
    auto twice = [](int x) { return 2 * x; };
    check_every_form(
        pool, [&] { return base | ranges::views::transform([](int x) { return x + 1; }); },
        twice, std::vector<int>{4, 6, 8, 10, 12, 14, 16, 18});
    check_every_form(
        pool, [&] { return base | ranges::views::filter([](int x) { return x % 2 == 0; }); },
        twice, std::vector<int>{4, 8, 12, 16});
    check_every_form(pool, [&] { return base | ranges::views::take(3); }, twice,
                     std::vector<int>{2, 4, 6});
}

#if PYPOOL_STD_VIEWS
BOOST_AUTO_TEST_CASE(std_transform_filter_and_take_are_accepted, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> base{1, 2, 3, 4, 5, 6, 7, 8};
    auto twice = [](int x) { return 2 * x; };
    check_every_form(pool, [&] { return base | std::views::transform([](int x) { return x + 1; }); },
                     twice, std::vector<int>{4, 6, 8, 10, 12, 14, 16, 18});
    check_every_form(pool, [&] { return base | std::views::filter([](int x) { return x % 2 == 0; }); },
                     twice, std::vector<int>{4, 8, 12, 16});
    check_every_form(pool, [&] { return base | std::views::take(3); }, twice,
                     std::vector<int>{2, 4, 6});
    check_every_form(pool, [] { return std::views::iota(0L) | std::views::take(5); },
                     [](long x) { return x * x; }, squares_below(5L));
}
#endif

BOOST_AUTO_TEST_CASE(range_v3_and_std_join_are_accepted, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::vector<int>> nested{{1, 2}, {}, {3}, {4, 5, 6}};
    auto twice = [](int x) { return 2 * x; };
    const std::vector<int> expected{2, 4, 6, 8, 10, 12};
    check_every_form(pool, [&] { return nested | ranges::views::join; }, twice, expected);
#if PYPOOL_STD_VIEWS
    check_every_form(pool, [&] { return nested | std::views::join; }, twice, expected);
#endif
}

BOOST_AUTO_TEST_CASE(range_v3_chunk_yields_subranges, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> base{1, 2, 3, 4, 5, 6, 7};
    auto sum = [](auto chunk) { return ranges::accumulate(chunk, 0); };
    check_every_form(pool, [&] { return base | ranges::views::chunk(3); }, sum,
                     std::vector<int>{6, 15, 7});
}

BOOST_AUTO_TEST_CASE(range_v3_generate_take_is_accepted, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto make = [] {
        return ranges::views::generate([n = 0]() mutable { return n++; }) |
               ranges::views::take(6);
    };
    check_every_form(pool, make, [](int x) { return x * 10; },
                     std::vector<int>{0, 10, 20, 30, 40, 50});
}

BOOST_AUTO_TEST_CASE(range_v3_and_std_istream_views_are_read_once, *utf::timeout(60)) {
    ThreadPool pool(2);
    // one stream per range made: each form reads its own copy of the text
    std::vector<std::istringstream> streams;
    streams.reserve(64);
    auto v3 = [&] {
        streams.emplace_back("1 2 3 4 5");
        return ranges::istream_view<int>(streams.back());
    };
    auto sq = [](int x) { return x * x; };
    check_every_form(pool, v3, sq, std::vector<int>{1, 4, 9, 16, 25});
#if PYPOOL_STD_VIEWS
    auto std_view = [&] {
        streams.emplace_back("1 2 3 4 5");
        return std::views::istream<int>(streams.back());
    };
    check_every_form(pool, std_view, sq, std::vector<int>{1, 4, 9, 16, 25});
#endif
}

BOOST_AUTO_TEST_CASE(starmap_takes_range_v3_zip_and_iota_of_long, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<long> a{1, 2, 3};
    auto out = pool.starmap([](long x, long y) { return x * y; },
                            ranges::views::zip(a, ranges::views::iota(10L)));
    BOOST_TEST(out == (std::vector<long>{10, 22, 36}));
    auto r = pool.starmap_async([](long x, long y) { return x + y; },
                                ranges::views::zip(a, ranges::views::iota(10L)));
    BOOST_TEST(r.get() == (std::vector<long>{11, 13, 15}));
}

BOOST_AUTO_TEST_CASE(wait_and_as_completed_take_range_v3_views_of_results, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<pypool::Future<int>> fs;
    for (int i = 0; i < 5; ++i) fs.push_back(pool.submit([](int x) { return x; }, i));
    auto done = pypool::wait(ranges::views::all(fs));
    BOOST_TEST(done.done.size() == 5U);
    int sum = 0;
    for (auto& f : pypool::as_completed(fs | ranges::views::take(3), std::chrono::seconds(30)))
        sum += f.get();
    BOOST_TEST(sum == 0 + 1 + 2);
}

BOOST_AUTO_TEST_SUITE_END()
