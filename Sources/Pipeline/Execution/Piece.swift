import Foundation

/// Bytes on their way to an output shard: where they go, and the memory that holds them.
///
/// A piece owns its buffer (freed with the last reference) and the budget reservation of its
/// size, which is released once its bytes are written or spilled.
struct Piece: Sendable {
  /// The shard the bytes belong to.
  var shard: Int
  /// Their offset in the shard's data section.
  var offset: Int
  /// The bytes.
  var buffer: PieceBuffer
  /// The element width of the data (1, 2, 4 or 8), for the spill codec's byte planes.
  var elementWidth: Int

  var count: Int { buffer.bytes.count }
}

/// A buffer that frees itself; shared between tasks by reference, written by one at a time.
///
/// Buffers of 1 MiB or more are mapped straight from the kernel (`mmap`) and returned to it when
/// freed (`munmap`): glibc's allocator would keep freed pieces in per-thread arenas, and the
/// process would hold far more than the memory budget says is in use.
final class PieceBuffer: @unchecked Sendable {
  /// The bytes.
  let bytes: UnsafeMutableRawBufferPointer
  private let allocation: UnsafeMutableRawBufferPointer
  private let mapped: Bool

  static let mappingThreshold = 1 << 20

  init(count: Int) {
    var mapped = false
    var allocation: UnsafeMutableRawBufferPointer?
    if count >= Self.mappingThreshold,
      let address = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
      address != MAP_FAILED
    {
      allocation = UnsafeMutableRawBufferPointer(start: address, count: count)
      mapped = true
    }
    self.allocation = allocation ?? UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
    self.mapped = mapped
    bytes = UnsafeMutableRawBufferPointer(rebasing: self.allocation[0..<count])
  }

  deinit {
    if mapped {
      munmap(allocation.baseAddress, allocation.count)
    } else {
      allocation.deallocate()
    }
  }
}
