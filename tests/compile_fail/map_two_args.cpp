// map(add, xs) with a function of two arguments.
// expect: map_callable
// expect: callable_with_element
#include <vector>

#include <pypool/pypool.hpp>

int add(int a, int b) { return a + b; }
int twice(int a) { return 2 * a; }

int main() {
    pypool::ThreadPool pool(1);
    std::vector<int> xs{1, 2, 3};
#ifdef PYPOOL_FIXED
    auto r = pool.map(twice, xs);
#else
    auto r = pool.map(add, xs);  // error-here
#endif
    return static_cast<int>(r.size());
}
