// A helper program for tests/test_process_lifecycle.cpp: starts a ProcessPool with two
// workers (start method from argv[1]: forkserver, spawn or fork), prints "pid <p>" for each
// worker pid its tasks reported and then "ready", and blocks until it is killed. The test
// kills it with SIGKILL and checks that none of its workers (or its fork server) is left.
#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace {
int my_pid(int) { return static_cast<int>(::getpid()); }
}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPoolOptions o;
    o.processes = 2;
    const std::string m = argc > 1 ? argv[1] : "forkserver";
    o.start_method = m == "spawn" ? pypool::StartMethod::spawn
                     : m == "fork" ? pypool::StartMethod::fork
                                   : pypool::StartMethod::forkserver;
    pypool::ProcessPool pool(o);
    std::set<int> pids;
    for (int round = 0; round < 50 && pids.size() < 2; ++round)
        for (int p : pool.map(my_pid, std::vector<int>(64, 0), 1)) pids.insert(p);
    for (int p : pids) std::printf("pid %d\n", p);
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) ::pause();
}
