// expect: without captures
#include <pypool/process.hpp>

#include <vector>

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    int k = 1;
    (void)pool.map([&k](int x) { return x + k; }, std::vector<int>{1, 2});
}
