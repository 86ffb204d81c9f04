// A lambda taking int& passed to submit: it would change a copy.
// expect: non-const reference parameter
// expect: std::ref
#include <functional>

#include <pypool/pypool.hpp>

int main() {
    pypool::ThreadPool pool(1);
    int counter = 0;
    auto bump = [](int& c) { ++c; };
#ifdef PYPOOL_FIXED
    pool.submit(bump, std::ref(counter)).get();
#else
    pool.submit(bump, counter).get();  // error-here
#endif
    return counter;
}
