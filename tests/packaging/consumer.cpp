// A program using an installed (or subproject) pypool: built by each packaging test
// (Meson subproject, CMake find_package, pkg-config) and run. Prints one line; exits 1 if a
// result or the version is wrong.
#include <pypool/asio.hpp>
#include <pypool/pypool.hpp>
#include <pypool/version.hpp>

#include <boost/asio/post.hpp>

#include <cstdio>
#include <cstring>
#include <future>
#include <tuple>
#include <vector>

int main() {
    pypool::ThreadPool pool(2);
    auto r = pool.apply_async([](int a, int b) { return a + b; }, std::tuple{2, 3});
    const std::vector<int> squares = pool.map([](int x) { return x * x; }, std::vector{1, 2, 3});
    int imap_sum = 0;
    for (int v : pool.imap([](int x) { return x + 1; }, std::vector{1, 2, 3})) imap_sum += v;
    std::promise<int> posted;
    boost::asio::post(pypool::worker_executor(pool), [&] { posted.set_value(7); });
    const int sum = r.get();
    const int from_asio = posted.get_future().get();
    pool.close();
    pool.join();
    std::printf("pypool %s: apply_async 5=%d, map [1, 4, 9]=[%d, %d, %d], imap 9=%d, asio 7=%d\n",
                pypool::version, sum, squares.at(0), squares.at(1), squares.at(2), imap_sum,
                from_asio);
    bool ok = sum == 5 && squares == std::vector{1, 4, 9} && imap_sum == 9 && from_asio == 7;
#ifdef PYPOOL_EXPECTED_VERSION
    if (std::strcmp(pypool::version, PYPOOL_EXPECTED_VERSION) != 0) {
        std::printf("version mismatch: header says %s, the build system says %s\n",
                    pypool::version, PYPOOL_EXPECTED_VERSION);
        ok = false;
    }
#endif
    return ok ? 0 : 1;
}
