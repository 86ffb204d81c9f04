#include <boost/test/unit_test.hpp>
#include <pypool/pypool.hpp>
#include <atomic>
#include <thread>

BOOST_AUTO_TEST_CASE(apply_async_returns_value) {
    pypool::ThreadPool pool(2);
    auto r = pool.apply_async([](int a, int b) { return a + b; }, std::tuple{2, 3});
    BOOST_TEST(r.get() == 5);
    BOOST_TEST(pool.apply([] { return 7; }) == 7);
    std::atomic<int> seen{0};
    auto r2 = pool.apply_async([](int x) { return x * 2; }, std::tuple{21},
                               {.callback = [&](const int& v) { seen = v; }});
    r2.wait();
    BOOST_TEST(seen.load() == 42);
    auto f = pool.submit([](int x) { if (x) throw 42; return 1; }, 1);
    BOOST_CHECK_THROW(f.get(), int);
}
