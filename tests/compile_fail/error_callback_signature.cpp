// A Python-style error_callback taking the exception instead of std::exception_ptr.
// expect: error_callback
// expect: void(std::exception_ptr)
// expect: pypool::what
#include <exception>
#include <tuple>

#include <pypool/pypool.hpp>

int square(int x) { return x * x; }

int main() {
    pypool::ThreadPool pool(1);
#ifdef PYPOOL_FIXED
    auto r = pool.apply_async(square, std::tuple{3}, {.error_callback = [](std::exception_ptr) {}});
#else
    auto r = pool.apply_async(square, std::tuple{3}, {.error_callback = [](const std::exception&) {}});  // error-here
#endif
    return r.get();
}
