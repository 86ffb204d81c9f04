// A lambda taking int& passed to apply_async: it would change a copy.
// expect: non-const reference parameter
// expect: std::ref
#include <functional>
#include <tuple>

#include <pypool/pypool.hpp>

int main() {
    pypool::ThreadPool pool(1);
    int counter = 0;
    auto bump = [](int& c) { ++c; };
#ifdef PYPOOL_FIXED
    pool.apply_async(bump, std::tuple{std::ref(counter)}).get();
#else
    pool.apply_async(bump, std::tuple{counter}).get();  // error-here
#endif
    return counter;
}
