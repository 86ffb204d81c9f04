// map over something that is not a range.
// expect: items_range
#include <vector>

#include <pypool/pypool.hpp>

int twice(int a) { return 2 * a; }

int main() {
    pypool::ThreadPool pool(1);
#ifdef PYPOOL_FIXED
    auto r = pool.map(twice, std::vector{5});
#else
    auto r = pool.map(twice, 5);  // error-here
#endif
    return static_cast<int>(r.size());
}
