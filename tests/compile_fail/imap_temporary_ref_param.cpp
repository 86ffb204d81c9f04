// imap over a temporary container with a function taking a non-const reference.
// expect: temporaries
// expect: lvalue
#include <vector>

#include <pypool/pypool.hpp>

int main() {
    pypool::ThreadPool pool(1);
    int n = 0;
#ifdef PYPOOL_FIXED
    std::vector<int> xs{1, 2, 3};
    for (auto v : pool.imap([](int& x) { return ++x; }, xs)) n += v;
#else
    for (auto v : pool.imap([](int& x) { return ++x; }, std::vector{1, 2, 3})) n += v;  // error-here
#endif
    return n;
}
