// head_arena.h: room for one parsed message head's fields inside the object that owns its parser.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>

namespace easedge::proxy {

namespace http = boost::beast::http;

// Beast's fields allocate every field of a parsed head, and its target or reason, one at a time: about ten
// allocations and ten frees per request head. A HeadArena is a block inside the object that owns the parser
// (allocated once per message anyway); the head's pieces are carved from it in order and given back all at
// once with it. A head that outgrows it goes on in the heap. Sized for an ActiveSync request head (ten
// fields, ~900 bytes of Beast's elements); limits.max_request_header_bytes, not this, bounds a head.
class HeadArena {
public:
  static constexpr std::size_t capacity = 1024;

  HeadArena() noexcept {}  // leaves the block as it is (an owner with a user-provided constructor keeps it so)
  HeadArena(const HeadArena&) = delete;
  HeadArena& operator=(const HeadArena&) = delete;

  // `bytes` aligned to `alignment`, or nullptr when the rest of the block is too small.
  void* allocate(std::size_t bytes, std::size_t alignment) noexcept {
    std::size_t start = (used_ + alignment - 1) & ~(alignment - 1);
    if (start > capacity || bytes > capacity - start) return nullptr;
    used_ = start + bytes;
    return block_ + start;
  }

  // std::less: `p` is usually a heap block, and only its total order compares pointers into different objects.
  bool owns(const void* p) const noexcept {
    auto* byte = static_cast<const std::byte*>(p);
    std::less<const std::byte*> before;
    return !before(byte, block_) && before(byte, block_ + capacity);
  }

private:
  alignas(std::max_align_t) std::byte block_[capacity];
  std::size_t used_ = 0;
};

// Allocates from a HeadArena while it has room, else from the heap; without an arena (default-constructed),
// from the heap only. A copy of a head (select_on_container_copy_construction) and a head assigned another's
// fields keep to the heap: only the parser's own message lives in its arena, and no longer than the arena.
template <class T>
class HeadAllocator {
public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::false_type;
  using propagate_on_container_swap = std::false_type;
  using is_always_equal = std::false_type;

  HeadAllocator() noexcept = default;
  explicit HeadAllocator(HeadArena* arena) noexcept : arena_(arena) {}
  template <class U>
  HeadAllocator(const HeadAllocator<U>& other) noexcept : arena_(other.arena()) {}  // NOLINT: rebinding

  T* allocate(std::size_t n) {
    if (arena_ != nullptr && n <= capacity_in_items)
      if (void* p = arena_->allocate(n * sizeof(T), alignof(T))) return static_cast<T*>(p);
    return std::allocator<T>().allocate(n);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    if (arena_ != nullptr && arena_->owns(p)) return;  // given back with the arena
    std::allocator<T>().deallocate(p, n);
  }

  HeadAllocator select_on_container_copy_construction() const noexcept { return HeadAllocator(); }

  HeadArena* arena() const noexcept { return arena_; }

  template <class U>
  bool operator==(const HeadAllocator<U>& other) const noexcept {
    return arena_ == other.arena();
  }

private:
  static constexpr std::size_t capacity_in_items = HeadArena::capacity / sizeof(T);
  HeadArena* arena_ = nullptr;
};

using HeadFields = http::basic_fields<HeadAllocator<char>>;
using RequestHead = http::request_header<HeadFields>;
using ResponseHead = http::response_header<HeadFields>;
template <class Body>
using RequestHeadParser = http::parser<true, Body, HeadAllocator<char>>;
template <class Body>
using ResponseHeadParser = http::parser<false, Body, HeadAllocator<char>>;

// A parser and the arena its head lives in, allocated together once per message (the arena must outlive
// the parser: it is declared first). The constructor is user-provided because make_unique value-initialises,
// which for a class without one zeroes the whole object, the arena's block included, first; a class deriving
// from this one needs its own for the same reason (Session::Request).
template <class Parser>
struct ParserWithArena {
  ParserWithArena() {}
  HeadArena head_arena;
  Parser parser{std::piecewise_construct, std::tuple<>(), std::tuple(HeadAllocator<char>(&head_arena))};
};

}  // namespace easedge::proxy
