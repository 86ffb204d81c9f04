// mpi-bench (issue 14): pypool::mpi::Executor on the ranks of `mpirun -n N` (N >= 2), against
// bench/python_mpi_futures.py (mpi4py.futures' MPICommExecutor) on the same rank count;
// scripts/bench --mpi runs both and prints the ratios.
//   M0 the floor: a bare 8-byte MPI_Send/MPI_Recv ping-pong between ranks 0 and 1 (us per
//      round trip), measured before the Executor exists
//   M1 submit + result of N trivial tasks (tasks/s)
//   M2 one task's round trip, submit then result, one at a time (p50, p99 us)
//   M3 map over 1,000,000 ints, default chunksize (s)
// Prints "RESULT <workload> <library> <metric> <value>" lines (library "pypool" or "mpi").
//
// usage: mpirun -n 3 mpi-bench [--smoke] [--scale F]
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <pypool/mpi.hpp>

#include "bench_common.hpp"

using namespace pypool_bench;

namespace {

int trivial(int x) { return x + 1; }
int square(int x) { return x * x; }
[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "mpi-bench: wrong result in %s\n", what);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();
}

/// M0: rank 0 <-> rank 1, 8 bytes each way; the other ranks wait at the barrier.
void ping_pong(int rank, int iters) {
    MPI_Barrier(MPI_COMM_WORLD);
    std::uint64_t v = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) {
        if (rank == 0) {
            MPI_Send(&v, 8, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(&v, 8, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(&v, 8, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            ++v;
            MPI_Send(&v, 8, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
    const double us = seconds_since(t0) * 1e6 / iters;
    if (rank == 0) {
        if (v != static_cast<std::uint64_t>(iters)) fail("M0");
        result("M0", "mpi", "pingpong_8B_us", us);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--smoke") == 0) cfg.smoke = true;
        if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) cfg.scale = std::atof(argv[++i]);
    }
    auto n_of = [](std::size_t full, std::size_t small) { return static_cast<int>(size_n(full, small)); };
    // MPI first, for the bare floor; the Executor then finds it initialised (and leaves
    // MPI_Finalize to us).
    int provided = 0, rank = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    ping_pong(rank, n_of(100'000, 100));
    {
        pypool::mpi::Executor ex(argc, argv);
        if (ex) {
            int ranks = 0;
            MPI_Comm_size(MPI_COMM_WORLD, &ranks);
            std::printf("NOTE all pypool %d ranks (%zu workers)\n", ranks, ex.size());
            // M1
            const int n1 = n_of(200'000, 1000);
            auto t0 = Clock::now();
            std::vector<pypool::AsyncResult<int>> fs;
            fs.reserve(static_cast<std::size_t>(n1));
            for (int i = 0; i < n1; ++i) fs.push_back(ex.submit(trivial, i));
            long long sum = 0;
            for (auto& f : fs) sum += f.get();
            const double s1 = seconds_since(t0);
            if (sum != static_cast<long long>(n1) * (n1 + 1) / 2) fail("M1");
            result("M1", "pypool", "tasks_per_s", n1 / s1);
            // M2
            const int n2 = n_of(20'000, 200);
            std::vector<double> us;
            us.reserve(static_cast<std::size_t>(n2));
            for (int i = 0; i < n2; ++i) {
                const auto t = Clock::now();
                if (ex.submit(trivial, i).get() != i + 1) fail("M2");
                us.push_back(seconds_since(t) * 1e6);
            }
            std::sort(us.begin(), us.end());
            result("M2", "pypool", "p50_us", us[us.size() / 2]);
            result("M2", "pypool", "p99_us", us[us.size() * 99 / 100]);
            // M3
            const int n3 = n_of(1'000'000, 10'000);
            std::vector<int> in(static_cast<std::size_t>(n3));
            for (int i = 0; i < n3; ++i) in[static_cast<std::size_t>(i)] = i % 1000;
            t0 = Clock::now();
            const auto out = ex.map(square, in);
            const double s3 = seconds_since(t0);
            for (int i = 0; i < n3; ++i)
                if (out[static_cast<std::size_t>(i)] != (i % 1000) * (i % 1000)) fail("M3");
            result("M3", "pypool", "time_s", s3);
            ex.shutdown();
        }
    }
    MPI_Finalize();
}
