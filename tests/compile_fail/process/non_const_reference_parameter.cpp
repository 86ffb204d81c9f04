// expect: non-const reference
#include <pypool/process.hpp>

namespace {
void bump(int& x) { ++x; }
}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    (void)pool.submit(bump, 1);
}
