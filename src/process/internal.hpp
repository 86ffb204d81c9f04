#pragma once
// Internal to src/process/: byte readers and code references shared by the parent and
// worker sides.
#include <cstddef>
#include <cstdint>
#include <string>

namespace pypool::detail {

/// Reads little pieces from a byte range; false once it runs out.
struct Reader {
    const char* p;
    const char* end;
    bool u32(std::uint32_t& v) noexcept;
    bool u64(std::uint64_t& v) noexcept;
    bool str(std::string& s);
};
inline std::size_t end_of(const Reader& r) noexcept { return static_cast<std::size_t>(r.end - r.p); }

/// Appends the name of the code at addr (module, offset, GNU build-id), or "no code" for
/// nullptr. Throws SerializationError if addr is in no loaded module.
void append_code_ref(std::string& out, const void* addr);
/// In a worker: the address a reference names here (nullptr for "no code" or on error,
/// then error says why).
const void* read_code_ref(Reader& r, std::string& error);

}  // namespace pypool::detail
