// starmap with tuples one element too long.
// expect: starmap_callable
// expect: callable_with_tuple_elements
#include <tuple>
#include <vector>

#include <pypool/pypool.hpp>

int add(int a, int b) { return a + b; }

int main() {
    pypool::ThreadPool pool(1);
#ifdef PYPOOL_FIXED
    std::vector<std::tuple<int, int>> ts{{1, 2}, {3, 4}};
#else
    std::vector<std::tuple<int, int, int>> ts{{1, 2, 3}, {3, 4, 5}};
#endif
    auto r = pool.starmap(add, ts);  // error-here
    return static_cast<int>(r.size());
}
