// One waiter over many results: the engine of pypool::wait and pypool::as_completed.
//
// Locking: a state's stripe lock is held while a listener is notified; the notify takes
// the waiter's m_ under it. Nothing takes these in another order.
#include <algorithm>

#include <pypool/detail/multi_wait.hpp>
#include <pypool/detail/pool_core.hpp>
#include <pypool/errors.hpp>

namespace pypool::detail {

MultiWait::MultiWait(std::vector<StateBase*> states)
    : states_(std::move(states)),
      nodes_(std::make_unique<Node[]>(states_.size())),
      order_(std::make_unique<std::size_t[]>(states_.size())),
      recorded_(std::make_unique<bool[]>(states_.size())) {
    for (StateBase* s : states_) {
        if (s->is_ready()) continue;
        PoolCore* p = s->pool();  // unfinished: the pool is alive
        if (std::find(pools_.begin(), pools_.end(), p) == pools_.end()) pools_.push_back(p);
    }
    // Everything allocated: from here on nothing throws, so no listener can stay linked.
    for (std::size_t i = 0; i < states_.size(); ++i) {
        Node& n = nodes_[i];
        n.notify = &MultiWait::on_notify;
        n.owner = this;
        n.index = i;
        n.registered = states_[i]->add_listener(&n);
        if (!n.registered) record(i, false);
    }
}

MultiWait::~MultiWait() {
    // A recorded node was unlinked before it was notified, and its notify has left m_ once
    // we hold m_: skip those (their states may be gone). Unlink the others (states alive);
    // remove_listener waits out a notify still on its way to m_.
    {
        std::lock_guard lk(m_);
        for (std::size_t i = 0; i < states_.size(); ++i)
            if (recorded_[i]) nodes_[i].registered = false;
    }
    for (std::size_t i = 0; i < states_.size(); ++i)
        if (nodes_[i].registered) states_[i]->remove_listener(&nodes_[i]);
}

void MultiWait::on_notify(CompletionListener* l) noexcept {
    auto* n = static_cast<Node*>(l);
    n->owner->record(n->index, true);
}

void MultiWait::record(std::size_t index, bool wake) noexcept {
    std::lock_guard lk(m_);
    const std::size_t c = count_.load(std::memory_order_relaxed);
    order_[c] = index;
    recorded_[index] = true;
    count_.store(c + 1, std::memory_order_release);
    if (wake) cv_.notify_all();
}

void MultiWait::check_deadlock() {
    PoolCore* lp = PoolCore::current_loop_pool();
    if (!lp || std::find(pools_.begin(), pools_.end(), lp) == pools_.end()) return;
    std::lock_guard lk(m_);  // recorded states may be gone (as_completed lets them go)
    for (std::size_t i = 0; i < states_.size(); ++i) {
        const StateBase* s = states_[i];
        if (recorded_[i] || s->is_ready() || s->pool() != lp) continue;
        if ((s->word() & (flag_callback | flag_error_callback)) != 0) {
            throw DeadlockError(
                "waiting on the pool's callback thread for a result that has a callback "
                "would never finish: its callback needs this thread");
        }
    }
}

std::size_t MultiWait::wait_beyond(std::size_t seen, std::optional<Clock::time_point> deadline) {
    std::size_t c = ready_count();
    if (c > seen) return c;
    if (deadline && *deadline <= Clock::now()) return c;  // a zero timeout only checks
    check_deadlock();

    // On a pool thread nothing else runs meanwhile (an unrelated task could block this
    // wait); a spare thread keeps that pool's parallelism while it blocks.
    PoolCore::Blocking blocking;
    std::unique_lock lk(m_);
    auto more = [&] { return count_.load(std::memory_order_relaxed) > seen; };
    if (!deadline)
        cv_.wait(lk, more);
    else
        cv_.wait_until(lk, *deadline, more);
    return count_.load(std::memory_order_relaxed);
}

}  // namespace pypool::detail
