// map_async with a function taking a non-const reference to the element: map_async
// works on copies, so the caller's vectors would not change (issue 11, item 10).
// expect: map_async
// expect: use map or imap
#include <vector>

#include <pypool/pypool.hpp>

int main() {
    pypool::ThreadPool pool(1);
    std::vector<std::vector<int>> vs{{1}, {2}};
#ifdef PYPOOL_FIXED
    pool.map([](std::vector<int>& v) { v.push_back(0); }, vs);
#else
    pool.map_async([](std::vector<int>& v) { v.push_back(0); }, vs).get();  // error-here
#endif
    return static_cast<int>(vs[0].size());
}
