// A callback whose parameter does not take the task's result (an int).
// expect: Callbacks<R>::callback is called as void(const R&)
#include <string>
#include <tuple>

#include <pypool/pypool.hpp>

int square(int x) { return x * x; }

int main() {
    pypool::ThreadPool pool(1);
#ifdef PYPOOL_FIXED
    auto r = pool.apply_async(square, std::tuple{3}, {.callback = [](const int&) {}});
#else
    auto r = pool.apply_async(square, std::tuple{3}, {.callback = [](const std::string&) {}});  // error-here
#endif
    return r.get();
}
