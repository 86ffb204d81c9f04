// expect: cannot be serialized
// expect: NoSerializeResult
#include <pypool/process.hpp>

namespace {
struct NoSerializeResult {
    int x = 0;
};
NoSerializeResult make(int x) { return NoSerializeResult{x}; }
}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    (void)pool.submit(make, 1);
}
