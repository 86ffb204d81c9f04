// apply_async(square, std::tuple{1, 2}): one argument too many.
// expect: task_callable
// expect: {int, int} | <int, int>
#include <tuple>

#include <pypool/pypool.hpp>

int square(int x) { return x * x; }

int main() {
    pypool::ThreadPool pool(1);
#ifdef PYPOOL_FIXED
    auto r = pool.apply_async(square, std::tuple{1});
#else
    auto r = pool.apply_async(square, std::tuple{1, 2});  // error-here
#endif
    return r.get();
}
