// process_many_functions: several different functions submitted to one pool of worker
// processes, each reporting the process it ran in (ProcessPoolExecutor's seed program).
//
// The Python program it ports (examples/python/process_many_functions.py, runnable):
//
//   import os
//   from concurrent.futures import ProcessPoolExecutor
//
//   def square(x):
//       return os.getpid(), x * x
//
//   def greet(name):
//       return os.getpid(), f'Hello, {name}!'
//
//   def total(values):
//       return os.getpid(), sum(values)
//
//   def word_lengths(words):
//       return os.getpid(), {w: len(w) for w in words}
//
//   def scale(point, factor):
//       return os.getpid(), (point[0] * factor, point[1] * factor)
//
//   if __name__ == '__main__':
//       print(f'Main process: {os.getpid()}')
//       with ProcessPoolExecutor(3) as executor:
//           jobs = [('square(7)', executor.submit(square, 7)),
//                   ("greet('pypool')", executor.submit(greet, 'pypool')),
//                   ('total([1, 2, 3, 4])', executor.submit(total, [1, 2, 3, 4])),
//                   ("word_lengths(['pool', 'process'])", executor.submit(word_lengths, ['pool', 'process'])),
//                   ('scale((1.5, -2.0), 4)', executor.submit(scale, (1.5, -2.0), 4))]
//           for name, future in jobs:
//               pid, value = future.result()
//               print(f'{name} = {value!r} (process {pid})')
//
// Differences: each function has its own result type (a pair of the pid and the value:
// int, std::string, std::map, a user struct with a cereal serialize member); what crosses
// the process boundary is copied through cereal, as Python pickles it. Values are printed
// the way Python's repr would show them. --seed N is accepted for a uniform interface.
//
// Usage: process_many_functions
#include <unistd.h>

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

#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

namespace {

struct Point {
    double x = 0, y = 0;
    template <class Archive>
    void serialize(Archive& a) {
        a(x, y);
    }
};

int pid() { return static_cast<int>(::getpid()); }

std::pair<int, int> square(int x) { return {pid(), x * x}; }
std::pair<int, std::string> greet(const std::string& name) { return {pid(), "Hello, " + name + "!"}; }
std::pair<int, int> total(const std::vector<int>& values) {
    return {pid(), std::accumulate(values.begin(), values.end(), 0)};
}
std::pair<int, std::map<std::string, int>> word_lengths(const std::vector<std::string>& words) {
    std::map<std::string, int> m;
    for (const auto& w : words) m[w] = static_cast<int>(w.size());
    return {pid(), m};
}
std::pair<int, Point> scale(const Point& p, double factor) { return {pid(), Point{p.x * factor, p.y * factor}}; }

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

template <class T>
void show(const char* name, pypool::Future<std::pair<int, T>>& future) {
    const auto& [worker, value] = future.result();
    std::printf("%s = %s (process %d)\n", name, repr(value).c_str(), worker);
}

}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    std::printf("Main process: %d\n", pid());
    pypool::ProcessPool executor(3);
    auto f1 = executor.submit(square, 7);
    auto f2 = executor.submit(greet, std::string("pypool"));
    auto f3 = executor.submit(total, std::vector<int>{1, 2, 3, 4});
    auto f4 = executor.submit(word_lengths, std::vector<std::string>{"pool", "process"});
    auto f5 = executor.submit(scale, Point{1.5, -2}, 4.0);
    show("square(7)", f1);
    show("greet('pypool')", f2);
    show("total([1, 2, 3, 4])", f3);
    show("word_lengths(['pool', 'process'])", f4);
    show("scale((1.5, -2.0), 4)", f5);
    executor.shutdown();
}
