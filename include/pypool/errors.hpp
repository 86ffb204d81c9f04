#pragma once
/// @file
/// The exceptions pypool throws; each mirrors a Python exception and carries its message.

#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

namespace pypool {

/// A wait ran out of time (Python: multiprocessing.TimeoutError, concurrent.futures.TimeoutError).
class TimeoutError : public std::runtime_error {
public:
    /// Makes the error with the given message.
    explicit TimeoutError(const std::string& what = "timed out") : std::runtime_error(what) {}
};

/// Misuse of the pool or a bad argument (Python: ValueError raised by the pool).
class ValueError : public std::logic_error {
public:
    /// Makes the error with the given message.
    explicit ValueError(const std::string& what) : std::logic_error(what) {}
};

/// Submission to an executor that was shut down (Python: RuntimeError from the executor).
class RuntimeError : public std::runtime_error {
public:
    /// Makes the error with the given message.
    explicit RuntimeError(const std::string& what) : std::runtime_error(what) {}
};

/// The task was cancelled before it ran (Python: concurrent.futures.CancelledError).
class CancelledError : public std::runtime_error {
public:
    /// Makes the error with the given message.
    explicit CancelledError(const std::string& what = "task was cancelled")
        : std::runtime_error(what) {}
};

/// A wait that could never finish, e.g. on the callback thread or join() from a worker
/// (Python hangs instead).
class DeadlockError : public std::logic_error {
public:
    /// Makes the error with the given message.
    explicit DeadlockError(const std::string& what) : std::logic_error(what) {}
};

/// The message of a stored exception, as Python's str(e) in an error callback: what() of
/// a std::exception; for anything else thrown, "unknown exception of type <type>" (the
/// demangled type where the ABI tells it, e.g. "int"); "" for a null pointer. Throws only
/// std::bad_alloc.
inline std::string what(std::exception_ptr e) {
    if (!e) return {};
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
#if __has_include(<cxxabi.h>)
        if (const std::type_info* t = abi::__cxa_current_exception_type()) {
            int status = 0;
            std::unique_ptr<char, void (*)(void*)> name(
                abi::__cxa_demangle(t->name(), nullptr, nullptr, &status), std::free);
            return std::string("unknown exception of type ") +
                   (status == 0 && name ? name.get() : t->name());
        }
#endif
        return "unknown exception";
    }
}

}  // namespace pypool
