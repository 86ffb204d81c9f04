// Started by test_mpi_jobs through mpirun: one mpi::Executor job per mode.
//   single: run with -n 1; prints "ValueError: <what>" if the constructor threw it.
//   kill:   a task kills its rank with SIGKILL while the root waits (generously) on it;
//           the job must end non-zero within seconds, never hang.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <pypool/mpi.hpp>

namespace {
int die(int) {
    ::raise(SIGKILL);
    return 0;
}
int square(int x) { return x * x; }
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
    if (!ex) return 0;
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
