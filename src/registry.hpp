#pragma once
// The set of live pools, so a handle outliving its pool can tell whether the pool's
// callback thread still exists.
#include <mutex>
#include <unordered_set>

#include <pypool/detail/pool_core.hpp>

namespace pypool::detail {

std::mutex& registry_mutex();
std::unordered_set<const PoolCore*>& registry();

/// Calls fn(pool) under the registry lock if pool is alive; returns fn's result or false.
template <class Fn>
bool with_live_pool(PoolCore* pool, Fn&& fn) {
    std::lock_guard lk(registry_mutex());
    if (!registry().contains(pool)) return false;
    return fn(*pool);
}

}  // namespace pypool::detail
