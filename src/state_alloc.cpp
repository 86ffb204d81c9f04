// Recycling of result-state memory (include/pypool/detail/state_alloc.hpp).
//
// Bonwick's magazines: every thread keeps, per size class, two magazines (lists of up to
// kMagazine free blocks) and allocates and frees there without any lock or atomic. A
// thread that frees more than it allocates (a worker dropping the states its tasks
// finished) hands full magazines to a global depot; a thread that allocates more than it
// frees (the thread submitting the tasks) takes full ones from it: one lock per kMagazine
// blocks. Memory stays bounded: the depot keeps at most kDepot magazines per class and
// frees the rest, and a thread that exits gives its magazines back.
#include <pypool/detail/state_alloc.hpp>

#include <pthread.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define PYPOOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define PYPOOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define PYPOOL_POISON(p, n) ((void)(p), (void)(n))
#define PYPOOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace pypool::detail {
namespace {

// Size classes as malloc's chunks: 16 * k - 8 bytes (glibc adds an 8-byte header and
// rounds to 16), so a cached block costs what malloc would have: 8, 24, ..., 376 bytes.
constexpr std::size_t kGrain = 16;
constexpr std::size_t kClasses = 24;
constexpr std::size_t class_of(std::size_t size) noexcept { return (size + 8 + kGrain - 1) / kGrain - 1; }
constexpr std::size_t class_size(std::size_t c) noexcept { return (c + 1) * kGrain - 8; }
constexpr std::uint32_t kMagazine = 64;  // blocks per magazine
constexpr std::size_t kDepot = 16;       // full magazines the depot keeps per class

// A free block's first word links it to the next one. Under AddressSanitizer the rest of a
// cached block is poisoned, so a use after free of a state is still reported; the link
// stays readable because LeakSanitizer follows no pointer stored in poisoned memory (it
// would report every cached block but the first of each magazine as leaked).
struct Block {
    Block* next;
};
constexpr std::size_t kLink = sizeof(Block);

struct Magazine {
    Block* head = nullptr;
    std::uint32_t count = 0;

    void push(Block* b, std::size_t size) noexcept {
        b->next = head;
        PYPOOL_POISON(reinterpret_cast<char*>(b) + kLink, size - kLink);
        head = b;
        ++count;
    }
    Block* pop(std::size_t size) noexcept {
        Block* b = head;
        PYPOOL_UNPOISON(reinterpret_cast<char*>(b) + kLink, size - kLink);
        head = b->next;
        --count;
        // The next block was likely freed on another core: fetch its lines for writing now,
        // so the next allocation does not wait for them (the caller builds a state in it;
        // a block may straddle two lines).
        if (head) {
            __builtin_prefetch(head, 1);
            __builtin_prefetch(reinterpret_cast<char*>(head) + size - 1, 1);
        }
        return b;
    }
    /// Frees every block to the system.
    void release(std::size_t size) noexcept {
        while (count > 0) ::operator delete(pop(size));
    }
};

struct Depot {
    std::mutex m;
    Magazine full[kClasses][kDepot];
    std::size_t nfull[kClasses] = {};

    /// Takes a full magazine of class c into out; false if there is none.
    bool take(std::size_t c, Magazine& out) noexcept {
        std::lock_guard lock(m);
        if (nfull[c] == 0) return false;
        out = std::exchange(full[c][--nfull[c]], Magazine{});
        return true;
    }
    /// Keeps mag (emptied) if there is room, else frees its blocks.
    void give(std::size_t c, Magazine& mag, std::size_t size) noexcept {
        {
            std::lock_guard lock(m);
            if (nfull[c] < kDepot) {
                full[c][nfull[c]++] = std::exchange(mag, Magazine{});
                return;
            }
        }
        mag.release(size);
    }
};

// Never destroyed: threads may free states during static destruction and after it.
Depot& depot() noexcept {
    static Depot* d = [] {
        auto* p = new Depot;
        // A child forked while another thread holds the depot's lock would deadlock on it.
        ::pthread_atfork([] { depot().m.lock(); }, [] { depot().m.unlock(); },
                         [] { depot().m.unlock(); });
        return p;
    }();
    return *d;
}

struct ThreadCache {
    Magazine loaded[kClasses];
    Magazine previous[kClasses];
};

// Only a pointer lives in static TLS (a plain %fs access): the 768-byte cache itself is
// made on first use, so libpypool stays loadable by dlopen() (glibc's static TLS reserve
// for late-loaded libraries is small). Null: not made yet; exiting(): the thread is past
// its give-back and caches nothing any more.
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec")))
#endif
thread_local ThreadCache* tls_cache = nullptr;

ThreadCache* exiting() noexcept {
    static ThreadCache marker;  // never used as a cache
    return &marker;
}

void give_back_all(ThreadCache& tc) noexcept {
    for (std::size_t c = 0; c < kClasses; ++c) {
        const std::size_t size = class_size(c);
        for (Magazine* m : {&tc.loaded[c], &tc.previous[c]}) {
            if (m->count == kMagazine)
                depot().give(c, *m, size);
            else
                m->release(size);
        }
    }
}

struct Flusher {
    ~Flusher() {
        ThreadCache* tc = std::exchange(tls_cache, exiting());
        if (tc && tc != exiting()) {
            give_back_all(*tc);
            tc->~ThreadCache();
            std::free(tc);
        }
    }
};

/// This thread's cache, made on first use (arranging the give-back at thread exit);
/// nullptr if it cannot be had (the thread is exiting, or no memory): then the caller
/// uses malloc directly.
ThreadCache* cache() noexcept {
    ThreadCache* tc = tls_cache;
    if (tc) return tc == exiting() ? nullptr : tc;
    // malloc, not operator new: a program that replaces the global operator new (tests do,
    // to simulate bad_alloc) must not see the library's own bookkeeping
    void* mem = std::malloc(sizeof(ThreadCache));
    if (!mem) return nullptr;
    tc = ::new (mem) ThreadCache;
    tls_cache = tc;
    static thread_local Flusher flusher;
    (void)flusher;
    return tc;
}

}  // namespace

void* state_alloc(std::size_t size) {
    const std::size_t c = class_of(size);
    if (c >= kClasses) return ::operator new(size);
    const std::size_t csize = class_size(c);  // what state_free gives back
    ThreadCache* tc = cache();
    if (!tc) return ::operator new(csize);
    Magazine& loaded = tc->loaded[c];
    if (loaded.count == 0) {
        if (tc->previous[c].count > 0)
            std::swap(loaded, tc->previous[c]);
        else if (!depot().take(c, loaded))
            return ::operator new(csize);
    }
    return loaded.pop(csize);
}

void state_free(void* p, std::size_t size) noexcept {
    const std::size_t c = class_of(size);
    if (c >= kClasses) {
        ::operator delete(p);
        return;
    }
    const std::size_t csize = class_size(c);
    ThreadCache* tc = cache();
    if (!tc) {
        ::operator delete(p);
        return;
    }
    Magazine& loaded = tc->loaded[c];
    if (loaded.count == kMagazine) {
        Magazine& previous = tc->previous[c];
        if (previous.count != 0) depot().give(c, previous, csize);  // it is full
        previous = std::exchange(loaded, Magazine{});
    }
    loaded.push(static_cast<Block*>(p), csize);
}

}  // namespace pypool::detail
