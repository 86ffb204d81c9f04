#pragma once
/// @file
/// The exceptions pypool throws; each mirrors a Python exception and carries its message.

#include <stdexcept>
#include <string>

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

}  // namespace pypool
