// async_apply with a lambda taking int&: it would change a copy.
// expect: std::ref
#include <utility>
#include <exception>
#include <functional>
#include <tuple>

#include <pypool/asio.hpp>
#include <pypool/pypool.hpp>

int main() {
    pypool::ThreadPool pool(1);
    int counter = 0;
    auto bump = [](int& c) { ++c; };
#ifdef PYPOOL_FIXED
    pypool::async_apply(pool, bump, std::tuple{std::ref(counter)}, [](std::exception_ptr) {});
#else
    pypool::async_apply(pool, bump, std::tuple{counter}, [](std::exception_ptr) {});  // error-here
#endif
    pool.close();
    pool.join();
    return counter;
}
