// A helper program for tests/test_process_lifecycle.cpp: a main WITHOUT
// pypool::process_main. Constructing a ProcessPool (start method from argv[1]) must throw
// RuntimeError naming process_main, never hang or fork without end. Prints
// "RuntimeError: <what>" and exits 0 in that case; prints what happened instead and exits 1.
#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

#include <cstdio>
#include <exception>
#include <string>

namespace {
int one() { return 1; }
}  // namespace

int main(int argc, char** argv) {
    // No pypool::process_main(argc, argv) here: that is the point.
    pypool::ProcessPoolOptions o;
    o.processes = 1;
    const std::string m = argc > 1 ? argv[1] : "forkserver";
    o.start_method = m == "spawn" ? pypool::StartMethod::spawn : pypool::StartMethod::forkserver;
    try {
        pypool::ProcessPool pool(o);
        const int r = pool.apply(one);
        std::printf("no error: the pool ran a task (%d)\n", r);
        return 1;
    } catch (const pypool::RuntimeError& e) {
        std::printf("RuntimeError: %s\n", e.what());
        return 0;
    } catch (const std::exception& e) {
        std::printf("other exception: %s\n", e.what());
        return 1;
    }
}
