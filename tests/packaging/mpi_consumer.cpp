// Packaging test (issue 14): a program using an installed libpypool-mpi, run with mpirun -n 2.
#include <cstdio>

#include <pypool/mpi.hpp>

namespace {
int square(int x) { return x * x; }
}  // namespace

int main(int argc, char** argv) {
    pypool::mpi::Executor ex(argc, argv);
    if (!ex) return 0;
    std::printf("pypool-mpi: square 7=%d, workers %zu\n", ex.submit(square, 7).get(), ex.size());
}
