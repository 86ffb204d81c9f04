#include <pthread.h>

#include <string>

#include "loop.hpp"

namespace pypool::detail {

void set_thread_name(const std::string& prefix, const std::string& suffix) noexcept {
    constexpr std::size_t linux_max = 15;  // 16 bytes with the terminating NUL
    try {
        std::string name = prefix;
        const std::size_t room = suffix.size() < linux_max ? linux_max - suffix.size() : 0;
        if (name.size() > room) {
            std::size_t cut = room;
            // never split a UTF-8 sequence: back up while the first dropped byte continues one
            while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0U) == 0x80U) --cut;
            name.resize(cut);
        }
        name += suffix;
        if (name.size() > linux_max) name.resize(linux_max);
        pthread_setname_np(pthread_self(), name.c_str());
    } catch (...) {
        // naming is cosmetic: never let it fail a pool
    }
}

}  // namespace pypool::detail
