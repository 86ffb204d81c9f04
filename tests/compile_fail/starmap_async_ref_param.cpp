// starmap_async with a function taking a non-const reference to a tuple's element.
// expect: starmap_async
// expect: use map or imap
#include <tuple>
#include <vector>

#include <pypool/pypool.hpp>

int main() {
    pypool::ThreadPool pool(1);
    std::vector<std::tuple<int, int>> ts{{1, 2}};
#ifdef PYPOOL_FIXED
    pool.starmap_async([](const int& a, int b) { return a + b; }, ts).get();
#else
    pool.starmap_async([](int& a, int b) { a += b; }, ts).get();  // error-here
#endif
    return std::get<0>(ts[0]);
}
