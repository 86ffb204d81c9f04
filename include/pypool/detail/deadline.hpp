#pragma once
// Internal: turning a user's timeout into a deadline on the steady clock.
#include <chrono>
#include <optional>

#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>

namespace pypool::detail {

/// now + timeout; zero or negative (also -inf) means "check now"; a huge timeout (beyond a
/// century, also +inf) means "no deadline". Any representation and period is converted
/// without overflow. A NaN timeout throws ValueError("Invalid value NaN (not a number)"),
/// Python's message for a NaN timeout of its locks.
template <class Rep, class Period>
std::optional<Clock::time_point> deadline_after(std::chrono::duration<Rep, Period> timeout) {
    if constexpr (std::chrono::treat_as_floating_point_v<Rep>) {
        if (timeout.count() != timeout.count()) throw ValueError("Invalid value NaN (not a number)");
    }
    const auto now = Clock::now();
    if (timeout <= timeout.zero()) return now;
    // In long double (exact for any 64-bit count), so that neither the comparison nor the
    // conversion to the clock's integer nanoseconds can overflow.
    const std::chrono::duration<long double, Period> wide(timeout);
    constexpr std::chrono::duration<long double> forever(100.0L * 365 * 24 * 3600);
    if (wide > forever) return std::nullopt;
    return now + std::chrono::ceil<Clock::duration>(wide);
}

}  // namespace pypool::detail
