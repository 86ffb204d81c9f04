#pragma once
// The main of every ProcessPool test executable: pypool::process_main first (a worker or
// the fork server started from this executable serves there and never returns), then
// Boost.Test. Include it (or process_test_util.hpp, which includes it) instead of
// <boost/test/unit_test.hpp>, once per executable; the executable is built with
// -DBOOST_TEST_MODULE=<name> (tests/meson.build). Also: the start methods the tests cover.
#ifndef BOOST_TEST_NO_MAIN
#define BOOST_TEST_NO_MAIN
#endif
#include <boost/test/unit_test.hpp>

#include <pypool/process.hpp>

#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PYPOOL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PYPOOL_TEST_SANITIZED 1
#endif
#endif
#ifndef PYPOOL_TEST_SANITIZED
#define PYPOOL_TEST_SANITIZED 0
#endif

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);  // a worker or the fork server never returns from here
    return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}

namespace ptest {
/// The start methods the process tests cover. Not fork under ASan or TSan: g++ 12's
/// sanitizer allocators are not fork-safe in a threaded process (a child forked while
/// another thread allocates can hang in its first allocation: ASan once in ~50 runs, TSan 2
/// in 60, blocked on libtsan's region lock); that is fork's documented hazard
/// (docs/DESIGN.md), so sanitizer builds test the exec-based methods only.
inline const std::vector<pypool::StartMethod>& all_methods() {
#if PYPOOL_TEST_SANITIZED
    static const std::vector<pypool::StartMethod> v{pypool::StartMethod::forkserver,
                                                    pypool::StartMethod::spawn};
#else
    static const std::vector<pypool::StartMethod> v{
        pypool::StartMethod::forkserver, pypool::StartMethod::spawn, pypool::StartMethod::fork};
#endif
    return v;
}
}  // namespace ptest
