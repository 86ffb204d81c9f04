// ProcessPool: basic members (the implementer's development checks; the behaviour tests of
// issue 12 are the other tests/test_process_*.cpp files).
#include "process_test_main.hpp"

#include <unistd.h>

#include <pypool/pypool.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {
int add(int a, int b) { return a + b; }
int getpid_task() { return static_cast<int>(::getpid()); }
}  // namespace

BOOST_AUTO_TEST_CASE(apply_runs_in_another_process_fork) {
    pypool::ProcessPool pool(pypool::ProcessPoolOptions{.processes = 2,
                                                        .start_method = pypool::StartMethod::fork});
    BOOST_TEST(pool.apply(add, std::tuple{2, 3}) == 5);
    BOOST_TEST(pool.apply(getpid_task) != static_cast<int>(::getpid()));
    auto f = pool.submit([](std::string s) { return s + "!"; }, std::string("hi"));
    BOOST_TEST(f.get() == "hi!");
}
