#pragma once
// The set of live pools by id, so a handle outliving its pool can tell whether the pool's
// callback thread still exists. Ids are never reused (a new pool may be built at the
// address of a dead one: its address says nothing).
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <pypool/detail/pool_core.hpp>

namespace pypool::detail {

std::mutex& registry_mutex();
std::unordered_map<std::uint64_t, PoolCore*>& registry();

/// Calls fn(pool) under the registry lock if the pool with that id is alive; returns fn's
/// result or false.
template <class Fn>
bool with_live_pool(std::uint64_t id, Fn&& fn) {
    std::lock_guard lk(registry_mutex());
    const auto it = registry().find(id);
    if (it == registry().end()) return false;
    return fn(*it->second);
}

}  // namespace pypool::detail
