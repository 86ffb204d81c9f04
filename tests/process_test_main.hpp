#pragma once
// The main of every ProcessPool test executable: pypool::process_main first (a worker or
// the fork server started from this executable serves there and never returns), then
// Boost.Test. Include it instead of <boost/test/unit_test.hpp>, once per executable; the
// executable is built with -DBOOST_TEST_MODULE=<name> (tests/meson.build).
#ifndef BOOST_TEST_NO_MAIN
#define BOOST_TEST_NO_MAIN
#endif
#include <boost/test/unit_test.hpp>

#include <pypool/process.hpp>

int main(int argc, char** argv) {
    pypool::process_main(argc, argv);
    return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
