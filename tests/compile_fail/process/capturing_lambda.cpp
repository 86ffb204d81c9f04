// expect: without captures
// expect: pass state as arguments
#include <pypool/process.hpp>

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    int k = 1;
    (void)pool.submit([k](int x) { return x + k; }, 1);
}
