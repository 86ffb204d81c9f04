// Compiled (not run) by tests/packaging/header_warnings.sh with a user's strict flags
// (-Wall -Wextra -Werror at -O0, -O2 and -O3): every public header, and the main members
// instantiated as a user instantiates them. A warning from a pypool header breaks users who
// build with -Werror, so it fails this test.
#include <utility>  // before Asio (Boost 1.74 misses it in C++20 mode)

#include <pypool/asio.hpp>
#include <pypool/errors.hpp>
#include <pypool/function.hpp>
#include <pypool/futures.hpp>
#include <pypool/map.hpp>
#include <pypool/options.hpp>
#include <pypool/pool.hpp>
#include <pypool/pypool.hpp>
#include <pypool/result.hpp>
#include <pypool/version.hpp>

#include <pypool/detail/deadline.hpp>
#include <pypool/detail/imap_stream.hpp>
#include <pypool/detail/intrusive.hpp>
#include <pypool/detail/map_state.hpp>
#include <pypool/detail/multi_wait.hpp>
#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/spin.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/detail/task.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace {

int square(int x) { return x * x; }

// A result that is neither trivial nor small, as users' results are.
struct Big {
    std::string text;
    std::vector<int> values;
};

}  // namespace

int main() {
    using namespace std::chrono_literals;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2});
    int total = 0;  // touched only by callbacks (the callback thread)

    // apply / apply_async with callbacks
    total += pool.apply(square, std::tuple{3});
    auto a = pool.apply_async([](int x, std::string s) { return Big{s, {x}}; }, std::tuple{1, "a"},
                              {.callback = [&](const Big& b) { total += b.values.at(0); },
                               .error_callback = [](std::exception_ptr) {}});
    auto v = pool.apply_async([] {}, std::tuple{}, {.callback = [] {}});
    auto u = pool.apply_async([]() -> std::unique_ptr<int> { return std::make_unique<int>(4); });

    // map / map_async / starmap / imap / imap_unordered
    std::vector<int> squares = pool.map(square, std::vector{1, 2, 3});
    auto m = pool.map_async(square, std::vector{4, 5},
                            {.callback = [&](const std::vector<int>& r) { total += r.at(0); }});
    std::vector<int> sums = pool.starmap([](int x, int y) { return x + y; },
                                         std::vector{std::tuple{1, 2}, std::tuple{3, 4}});
    for (int x : pool.imap(square, std::vector{1, 2, 3})) total += x;
    for (int x : pool.imap_unordered(square, std::vector{1, 2, 3}, pypool::IMapOptions{.chunksize = 2}))
        total += x;
    auto it = pool.imap([](int x) { return Big{std::to_string(x), {x}}; }, std::vector{7});
    if (auto b = it.next(1s)) total += b->values.at(0);

    // submit / as_completed / wait
    auto f1 = pool.submit([](int x) { return x + 1; }, 1);
    auto f2 = pool.submit([](const std::string& s) { return s.size(); }, std::string("abc"));
    for (auto& f : pypool::as_completed({f1, pool.submit([] { return 2; })}, 10s)) total += f.result();
    auto w = pypool::wait({f1}, 10s, pypool::ReturnWhen::FirstCompleted);
    total += static_cast<int>(w.done.size() + f2.result());
    if (f1.exception(1s)) total = -1;
    f1.add_done_callback([](const pypool::Future<int>&) {});
    total += a.get(10s).values.at(0) + *std::move(u).get() + static_cast<int>(m.get().size());
    v.wait();

    // async_apply: use_future, a plain handler, a handler bound to an io_context or to a
    // pool's executor
    std::future<Big> fb = pypool::async_apply(pool, [] { return Big{"x", {1}}; }, std::tuple{},
                                              boost::asio::use_future);
    std::future<void> fv = pypool::async_apply(pool, [] {}, std::tuple{}, boost::asio::use_future);
    std::promise<int> plain;
    pypool::async_apply(pool, square, std::tuple{5},
                        [&](std::exception_ptr e, int r) { plain.set_value(e ? -1 : r); });
    boost::asio::io_context ioc;
    int on_ioc = 0;
    pypool::async_apply(pool, [] { return Big{"y", {2}}; }, std::tuple{},
                        boost::asio::bind_executor(ioc, [&](std::exception_ptr, Big b) {
                            on_ioc = b.values.at(0);
                        }));
    std::promise<void> on_worker;
    pypool::async_apply(pool, [] {}, std::tuple{},
                        boost::asio::bind_executor(pypool::worker_executor(pool),
                                                   [&](std::exception_ptr) { on_worker.set_value(); }));
    boost::asio::post(pypool::loop_executor(pool), [] {});
    ioc.run();
    total += fb.get().values.at(0) + plain.get_future().get() + on_ioc;
    fv.get();
    on_worker.get_future().get();

    pool.close();
    pool.join();
    std::printf("%s %d %zu %zu\n", pypool::version, total, squares.size(), sums.size());
    return 0;
}
