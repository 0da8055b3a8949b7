import Foundation

/// A buffer that frees itself; shared between tasks by reference, written by one at a time.
///
/// Buffers of 1 MiB or more are mapped straight from the kernel (`mmap`), in whole MiB: glibc's
/// allocator would keep freed pieces in per-thread arenas, and the process would hold far more
/// than the memory budget says is in use. A few freed mappings (at most ``poolLimit`` bytes) are
/// kept for the next buffer of the same size, which spares the kernel zeroing fresh pages for
/// every chunk; the rest are unmapped.
final class PieceBuffer: @unchecked Sendable {
  /// The bytes.
  let bytes: UnsafeMutableRawBufferPointer
  private let allocation: UnsafeMutableRawBufferPointer
  private let mapped: Bool

  static let mappingThreshold = 1 << 20
  /// The most bytes of freed mappings kept for reuse.
  static let poolLimit = 72 << 20
  /// Freed mappings kept for reuse, by address and size.
  private static let pool = Locked<(free: [(address: UInt, count: Int)], bytes: Int)>(([], 0))

  init(count: Int) {
    var mapped = false
    var allocation: UnsafeMutableRawBufferPointer?
    if count >= Self.mappingThreshold {
      let capacity = (count + Self.mappingThreshold - 1) / Self.mappingThreshold * Self.mappingThreshold
      let reused = Self.pool.withLock { pool -> UInt? in
        guard let index = pool.free.firstIndex(where: { $0.count == capacity }) else { return nil }
        pool.bytes -= capacity
        return pool.free.remove(at: index).address
      }
      if let reused {
        allocation = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: reused), count: capacity)
      }
      if allocation == nil,
        let address = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
        address != MAP_FAILED
      {
        allocation = UnsafeMutableRawBufferPointer(start: address, count: capacity)
      }
      mapped = allocation != nil
    }
    self.allocation = allocation ?? UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
    self.mapped = mapped
    bytes = UnsafeMutableRawBufferPointer(rebasing: self.allocation[0..<count])
  }

  deinit {
    guard mapped else {
      allocation.deallocate()
      return
    }
    let address = UInt(bitPattern: allocation.baseAddress)
    let count = allocation.count
    let kept = Self.pool.withLock { pool in
      guard pool.bytes + count <= Self.poolLimit else { return false }
      pool.free.append((address, count))
      pool.bytes += count
      return true
    }
    if !kept { munmap(allocation.baseAddress, allocation.count) }
  }
}
