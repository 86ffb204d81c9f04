#pragma once
// Shared by the tests: a gate that holds tasks until the test opens it.
#include <atomic>
#include <future>

/// Holds tasks until opened; opens itself on destruction so no pool hangs in its join().
/// Declare it after the pool so that it is destroyed (opened) first.
class Gate {
public:
    ~Gate() { open(); }
    void open() {
        if (!opened_.exchange(true)) p_.set_value();
    }
    std::shared_future<void> future() const { return f_; }

private:
    std::promise<void> p_;
    std::shared_future<void> f_ = p_.get_future().share();
    std::atomic<bool> opened_{false};
};
