// Recycling of result-state memory (include/pypool/detail/state_alloc.hpp).
//
// Bonwick's magazines: every thread keeps, per size class, two magazines (lists of up to
// kMagazine free blocks) and allocates and frees there without any lock or atomic. A
// thread that frees more than it allocates (a worker dropping the states its tasks
// finished) hands full magazines to a global depot; a thread that allocates more than it
// frees (the thread submitting the tasks) takes full ones from it: one lock per kMagazine
// blocks. Memory stays bounded: the depot keeps at most kDepot magazines per class and
// frees the rest, and a thread that exits gives its magazines back.
//
// One class is not malloc's: states of 57-64 bytes (a fire-and-forget task's) get whole
// 64-byte cache lines, carved from slabs. In an 80-byte malloc chunk such a state would
// span two lines, each shared with a neighbouring state that another core is writing.
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
// Sizes 57-64 form the line class instead (kLineClass, after them).
constexpr std::size_t kGrain = 16;
constexpr std::size_t kMallocClasses = 24;
constexpr std::size_t kLine = 64;
constexpr std::size_t kLineClass = kMallocClasses;
constexpr std::size_t kClasses = kMallocClasses + 1;
constexpr std::size_t kLarge = kClasses;  // class_of(): no class, plain operator new
constexpr std::size_t class_of(std::size_t size) noexcept {
    if (size > kLine - kGrain + 8 && size <= kLine) return kLineClass;
    const std::size_t c = (size + 8 + kGrain - 1) / kGrain - 1;
    return c < kMallocClasses ? c : kLarge;
}
constexpr std::size_t class_size(std::size_t c) noexcept {
    return c == kLineClass ? kLine : (c + 1) * kGrain - 8;
}
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
};

// ---- the line class's slabs -----------------------------------------------------------
// A slab is kSlab bytes aligned to kSlab, so a block's slab is its address rounded down;
// its first line is the header, the rest are blocks. Blocks leave a slab a magazine at a
// time and come back when a magazine is released (the depot is full, a thread exits); a
// slab with every block back is freed, so memory still falls once the caches let go.
// Guarded by the depot's slab_m (not its m, which workers giving magazines take as often).
constexpr std::size_t kSlab = 65536;
constexpr std::uint32_t kSlabLines = kSlab / kLine;

struct Slab {
    Slab* prev = nullptr;  // the list of slabs with blocks to give
    Slab* next = nullptr;
    Magazine free;            // blocks given back (poisoned like a cached block)
    std::uint32_t used = 0;   // blocks out (in magazines or states)
    std::uint32_t fresh = 1;  // the first line never handed out (kSlabLines: none left)
    /// Has blocks to give: then it is on the list.
    bool listed() const noexcept { return free.count > 0 || fresh < kSlabLines; }
};
static_assert(sizeof(Slab) <= kLine);

class Slabs {
public:
    /// Adds up to n blocks to mag (at least one); throws std::bad_alloc if it can add none.
    void fill(Magazine& mag, std::uint32_t n) {
        while (n-- > 0) {
            if (!avail_) {
                void* mem = ::operator new(kSlab, std::align_val_t{kSlab}, std::nothrow);
                if (!mem) {
                    if (mag.count > 0) return;
                    throw std::bad_alloc();
                }
                link(::new (mem) Slab);
            }
            Slab* s = avail_;
            Block* b = s->free.count > 0
                           ? s->free.pop(kLine)
                           : reinterpret_cast<Block*>(reinterpret_cast<char*>(s) + kLine * s->fresh++);
            ++s->used;
            if (!s->listed()) unlink(s);
            mag.push(b, kLine);
        }
    }
    /// Gives every block of mag back to its slab.
    void take_back(Magazine& mag) noexcept {
        while (mag.count > 0) {
            Block* b = mag.pop(kLine);
            auto* s = reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(b) & ~(kSlab - 1));
            if (--s->used == 0) {  // every other block is back: it is listed
                unlink(s);
                PYPOOL_UNPOISON(s, kSlab);
                s->~Slab();
                ::operator delete(s, std::align_val_t{kSlab});
                continue;
            }
            const bool was_listed = s->listed();
            s->free.push(b, kLine);
            if (!was_listed) link(s);
        }
    }

private:
    void link(Slab* s) noexcept {
        s->prev = nullptr;
        s->next = avail_;
        if (avail_) avail_->prev = s;
        avail_ = s;
    }
    void unlink(Slab* s) noexcept {
        (s->prev ? s->prev->next : avail_) = s->next;
        if (s->next) s->next->prev = s->prev;
    }
    Slab* avail_ = nullptr;
};

struct Depot {
    std::mutex m;  // guards full and nfull
    Magazine full[kClasses][kDepot];
    std::size_t nfull[kClasses] = {};
    std::mutex slab_m;  // guards slabs; never held with m
    Slabs slabs;        // the line class's blocks outside the magazines

    /// Frees every block of mag, of class c.
    void release(std::size_t c, Magazine& mag) noexcept {
        if (c == kLineClass) {
            std::lock_guard lock(slab_m);
            slabs.take_back(mag);
            return;
        }
        const std::size_t size = class_size(c);
        while (mag.count > 0) ::operator delete(mag.pop(size));
    }
    /// Up to n fresh blocks of the line class into mag (at least one); throws std::bad_alloc.
    void fill_lines(Magazine& mag, std::uint32_t n) {
        std::lock_guard lock(slab_m);
        slabs.fill(mag, n);
    }

    /// Takes a full magazine of class c into out; false if there is none.
    bool take(std::size_t c, Magazine& out) noexcept {
        std::lock_guard lock(m);
        if (nfull[c] == 0) return false;
        out = std::exchange(full[c][--nfull[c]], Magazine{});
        return true;
    }
    /// Keeps mag (emptied) if there is room, else frees its blocks.
    void give(std::size_t c, Magazine& mag) noexcept {
        {
            std::lock_guard lock(m);
            if (nfull[c] < kDepot) {
                full[c][nfull[c]++] = std::exchange(mag, Magazine{});
                return;
            }
        }
        release(c, mag);
    }
};

// Never destroyed: threads may free states during static destruction and after it.
Depot& depot() noexcept {
    static Depot* d = [] {
        auto* p = new Depot;
        // A child forked while another thread holds a lock of the depot would deadlock on it.
        constexpr auto unlock = [] {
            depot().slab_m.unlock();
            depot().m.unlock();
        };
        ::pthread_atfork(
            [] {
                depot().m.lock();
                depot().slab_m.lock();
            },
            unlock, unlock);
        return p;
    }();
    return *d;
}

struct ThreadCache {
    Magazine loaded[kClasses];
    Magazine previous[kClasses];
};

// Only a pointer lives in static TLS (a plain %fs access): the 800-byte cache itself is
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
        for (Magazine* m : {&tc.loaded[c], &tc.previous[c]}) {
            if (m->count == kMagazine)
                depot().give(c, *m);
            else
                depot().release(c, *m);
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
    if (c == kLarge) return ::operator new(size);
    const std::size_t csize = class_size(c);  // what state_free gives back
    ThreadCache* tc = cache();
    if (!tc) {
        if (c != kLineClass) return ::operator new(csize);
        Magazine one;
        depot().fill_lines(one, 1);
        return one.pop(csize);
    }
    Magazine& loaded = tc->loaded[c];
    if (loaded.count == 0) {
        if (tc->previous[c].count > 0)
            std::swap(loaded, tc->previous[c]);
        else if (!depot().take(c, loaded)) {
            if (c != kLineClass) return ::operator new(csize);
            depot().fill_lines(loaded, kMagazine);
        }
    }
    return loaded.pop(csize);
}

void state_free(void* p, std::size_t size) noexcept {
    const std::size_t c = class_of(size);
    if (c == kLarge) {
        ::operator delete(p);
        return;
    }
    const std::size_t csize = class_size(c);
    ThreadCache* tc = cache();
    if (!tc) {
        Magazine one;
        one.push(static_cast<Block*>(p), csize);
        depot().release(c, one);
        return;
    }
    Magazine& loaded = tc->loaded[c];
    if (loaded.count == kMagazine) {
        Magazine& previous = tc->previous[c];
        if (previous.count != 0) depot().give(c, previous);  // it is full
        previous = std::exchange(loaded, Magazine{});
    }
    loaded.push(static_cast<Block*>(p), csize);
}

}  // namespace pypool::detail
