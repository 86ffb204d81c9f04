// expect: function pointer or a lambda without captures
#include <pypool/process.hpp>

#include <functional>

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    std::function<int(int)> f = [](int x) { return x; };
    (void)pool.apply_async(f, std::tuple{1});
}
