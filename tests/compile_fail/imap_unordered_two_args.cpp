// imap_unordered(add, xs, 4) with a function of two arguments.
// expect: imap_callable
// expect: callable_with_element
#include <vector>

#include <pypool/pypool.hpp>

int add(int a, int b) { return a + b; }
int twice(int a) { return 2 * a; }

int main() {
    pypool::ThreadPool pool(1);
    std::vector<int> xs{1, 2, 3};
    int sum = 0;
#ifdef PYPOOL_FIXED
    for (int v : pool.imap_unordered(twice, xs, 4)) sum += v;
#else
    for (int v : pool.imap_unordered(add, xs, 4)) sum += v;  // error-here
#endif
    return sum;
}
