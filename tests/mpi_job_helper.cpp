// Started by test_mpi_jobs through mpirun: one mpi::Executor job per mode.
//   single: run with -n 1; prints "ValueError: <what>" if the constructor threw it.
//   kill:   a task kills its rank with SIGKILL while the root waits (generously) on it;
//           the job must end non-zero within seconds, never hang.
//   terminate: slow tasks on every rank, then terminate() and join(): every task ends
//           (cancelled, or done before), the job ends cleanly; prints the counts.
//   worker_submit: a worker rank (ex false) calls submit: prints the RuntimeError.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <pypool/mpi.hpp>

namespace {
int die(int) {
    ::raise(SIGKILL);
    return 0;
}
int square(int x) { return x * x; }
int slow(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // work being cut short
    return x;
}
}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "single") {
        try {
            pypool::mpi::Executor ex(argc, argv);
            std::printf("no exception\n");
            return 1;
        } catch (const pypool::ValueError& e) {
            std::printf("ValueError: %s\n", e.what());
            return 0;
        }
    }
    pypool::mpi::Executor ex(argc, argv);
    if (mode == "worker_submit" && !ex && ex.rank() == 1) {
        try {
            (void)ex.submit(square, 2).get(std::chrono::seconds(60));
            std::printf("rank 1: submit worked\n");
        } catch (const pypool::RuntimeError& e) {
            std::printf("rank 1: RuntimeError: %s\n", e.what());
        }
        std::fflush(stdout);
        return 0;
    }
    if (!ex) return 0;
    if (mode == "worker_submit") {
        std::printf("root size %zu\n", ex.size());
        return 0;
    }
    if (mode == "terminate") {
        std::vector<pypool::AsyncResult<int>> fs;
        for (int i = 0; i < 20; ++i) fs.push_back(ex.submit(slow, i));
        (void)fs.front().get(std::chrono::seconds(60));  // the ranks are busy now
        ex.terminate();
        ex.join();
        int cancelled = 0, done = 0;
        for (auto& f : fs) {
            if (!f.ready()) continue;
            if (f.cancelled())
                ++cancelled;
            else if (f.successful())
                ++done;
        }
        std::printf("ended %d, cancelled %d, done %d\n", cancelled + done, cancelled, done);
        return 0;
    }
    if (mode == "kill") {
        std::printf("square %d\n", ex.submit(square, 3).get());
        std::fflush(stdout);
        auto f = ex.submit(die, 0);
        try {
            (void)f.get(std::chrono::seconds(120));
            std::printf("the dead rank's task returned\n");
        } catch (const std::exception& e) {
            std::printf("the dead rank's task failed: %s\n", e.what());
        }
        return 2;  // not reached when the job is ended by the death, as it must be
    }
    std::printf("unknown mode\n");
    return 1;
}
