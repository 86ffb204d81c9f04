#pragma once
// Internal: turning a user's timeout into a deadline on the steady clock.
#include <chrono>
#include <optional>

#include <pypool/detail/state.hpp>

namespace pypool::detail {

/// now + timeout; zero or negative means "check now"; a huge timeout means "no deadline".
template <class Rep, class Period>
std::optional<Clock::time_point> deadline_after(std::chrono::duration<Rep, Period> timeout) {
    const auto now = Clock::now();
    if (timeout <= timeout.zero()) return now;
    using Secs = std::chrono::duration<double>;
    constexpr double max_secs = 100.0 * 365 * 24 * 3600;  // beyond a century: forever
    if (std::chrono::duration_cast<Secs>(timeout).count() > max_secs) return std::nullopt;
    return now + std::chrono::ceil<Clock::duration>(timeout);
}

}  // namespace pypool::detail
