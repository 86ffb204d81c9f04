// expect: cannot be serialized
// expect: NoSerializeArgument
#include <pypool/process.hpp>

namespace {
struct NoSerializeArgument {
    int x = 0;
};
int take(const NoSerializeArgument& a) { return a.x; }
}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    (void)pool.submit(take, NoSerializeArgument{});
}
