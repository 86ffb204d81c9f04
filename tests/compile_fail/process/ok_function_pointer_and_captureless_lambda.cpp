// expect: compiles
// The control: what the other snippets get wrong, done right, compiles (so a failure of the
// others is theirs, not the include path's).
#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

#include <cereal/types/string.hpp>

#include <string>

namespace {
int add(int a, int b) { return a + b; }
int length(const std::string& s) { return static_cast<int>(s.size()); }
struct Serializable {
    int x = 0;
    template <class A>
    void serialize(A& a) { a(x); }
};
int take(const Serializable& s) { return s.x; }
}  // namespace

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    pypool::ProcessPool pool(1);
    int k = 1;
    (void)pool.submit(add, 1, k);
    (void)pool.submit([](int x) { return x + 1; }, k);
    (void)pool.submit(length, std::string("abc"));
    (void)pool.submit(take, Serializable{2});
    (void)pool.map(+[](int x) { return x; }, {1, 2});
}
