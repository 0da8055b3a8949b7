/// A region mapped with `mmap`, by address: the budget's state machine keeps and hands these
/// out without ever touching the memory.
struct MemoryMapping: Sendable, Equatable {
  var address: UInt
  var count: Int
}
