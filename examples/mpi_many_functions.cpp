// mpi_many_functions: several different functions submitted to an MPI executor, results
// printed as they complete, each naming the rank that ran it (mpi4py.futures' version of
// the "many functions" seed program).
//
// The Python program it ports (examples/python/mpi_many_functions.py, runnable with
// `mpirun -n 4 python3 examples/python/mpi_many_functions.py`):
//
//   from concurrent.futures import as_completed
//   from mpi4py import MPI
//   from mpi4py.futures import MPICommExecutor
//
//   def rank():
//       return MPI.COMM_WORLD.Get_rank()
//
//   def square(x):
//       return rank(), x * x
//   def greet(name):
//       return rank(), f'Hello, {name}!'
//   def total(values):
//       return rank(), sum(values)
//   def word_lengths(words):
//       return rank(), {w: len(w) for w in words}
//   def scale(point, factor):
//       return rank(), (point[0] * factor, point[1] * factor)
//
//   if __name__ == '__main__':
//       with MPICommExecutor(MPI.COMM_WORLD, root=0) as executor:
//           if executor is not None:
//               print(f'Root rank {rank()} of {MPI.COMM_WORLD.Get_size()}')
//               jobs = {executor.submit(square, 7): 'square(7)',
//                       executor.submit(greet, 'pypool'): "greet('pypool')",
//                       executor.submit(total, [1, 2, 3, 4]): 'total([1, 2, 3, 4])',
//                       executor.submit(word_lengths, ['pool', 'rank']): "word_lengths(['pool', 'rank'])",
//                       executor.submit(scale, (1.5, -2.0), 4): 'scale((1.5, -2.0), 4)'}
//               for future in as_completed(jobs):
//                   r, value = future.result()
//                   print(f'{jobs[future]} = {value!r} (rank {r})')
//
// Differences: as_completed waits on results of one type, so each function returns its
// printed line ("<value repr> (rank R)"); the name of each job is found by comparing
// handles (Python uses the future as a dict key). What crosses ranks is copied through
// cereal, as mpi4py pickles it. Values are printed as Python's repr shows them.
//
// Usage: mpirun -n 4 mpi_many_functions
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

#include <pypool/futures.hpp>
#include <pypool/mpi.hpp>

namespace {

struct Point {
    double x = 0, y = 0;
    template <class Archive>
    void serialize(Archive& a) {
        a(x, y);
    }
};

int rank() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

std::string repr(int v) { return std::to_string(v); }
std::string repr(const std::string& s) { return "'" + s + "'"; }
std::string repr(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    std::string s = buf;
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
}
std::string repr(const std::map<std::string, int>& m) {
    std::string s = "{";
    for (const auto& [k, v] : m) s += (s.size() > 1 ? ", " : "") + repr(k) + ": " + repr(v);
    return s + "}";
}
std::string repr(const Point& p) { return "(" + repr(p.x) + ", " + repr(p.y) + ")"; }

/// Each function returns its line, "<value repr> (rank R)", so that all jobs have one
/// result type and as_completed can wait on them together.
template <class T>
std::string line(const T& value) {
    return repr(value) + " (rank " + std::to_string(rank()) + ")";
}
std::string square(int x) { return line(x * x); }
std::string greet(const std::string& name) { return line("Hello, " + name + "!"); }
std::string total(const std::vector<int>& values) {
    return line(std::accumulate(values.begin(), values.end(), 0));
}
std::string word_lengths(const std::vector<std::string>& words) {
    std::map<std::string, int> m;
    for (const auto& w : words) m[w] = static_cast<int>(w.size());
    return line(m);
}
std::string scale(const Point& p, double factor) { return line(Point{p.x * factor, p.y * factor}); }

}  // namespace

int main(int argc, char** argv) {
    pypool::mpi::Executor executor(argc, argv);
    if (!executor) return 0;  // a worker rank: it served until the root shut down
    int n = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    std::printf("Root rank %d of %d\n", rank(), n);
    std::vector<std::pair<pypool::Future<std::string>, const char*>> named{
        {executor.submit(square, 7), "square(7)"},
        {executor.submit(greet, std::string("pypool")), "greet('pypool')"},
        {executor.submit(total, std::vector<int>{1, 2, 3, 4}), "total([1, 2, 3, 4])"},
        {executor.submit(word_lengths, std::vector<std::string>{"pool", "rank"}),
         "word_lengths(['pool', 'rank'])"},
        {executor.submit(scale, Point{1.5, -2}, 4.0), "scale((1.5, -2.0), 4)"}};
    std::vector<pypool::Future<std::string>> futures;
    for (auto& [f, name] : named) futures.push_back(f);
    for (auto& future : pypool::as_completed(futures)) {
        const char* name = "?";
        for (auto& [f, nm] : named)
            if (f == future) name = nm;
        std::printf("%s = %s\n", name, future.result().c_str());
    }
    executor.shutdown();
}
