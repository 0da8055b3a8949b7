import Foundation
import SafeTensors

/// A buffer of tensor bytes that owns the ``MemoryReservation`` of its bytes: allocating one
/// takes a reservation of exactly ``footprint(_:)`` bytes, and freeing it (with the last
/// reference) returns them, so the budget counts the buffer for exactly as long as it exists.
///
/// Shared between tasks by reference. Whoever writes it must not race with another writer of
/// the same bytes: a chunk's pieces are written by its one task; a tensor's gathered parts are
/// written by every chunk task at once, each into its own elements (as
/// `QuantizationScheme.quantize(_:shape:rows:statistic:into:)` promises), and read only after
/// every chunk is done.
///
/// Buffers of ``mappingThreshold`` or more are mapped straight from the kernel (`mmap`), in
/// whole MiB, through the budget (which keeps a few freed mappings for reuse, counted): glibc's
/// allocator would keep freed pieces in per-thread arenas, and the process would hold far more
/// than the memory budget says is in use. A buffer takes its reservation's spare of its size
/// when it has one, then a pooled mapping of its size, and maps fresh pages only when neither
/// exists; a reused mapping still holds another buffer's bytes, so whoever fills a buffer writes
/// every byte of it (a read fills it, a kernel writes each of its pieces' elements, gathered
/// parts are zeroed first).
///
/// A buffer can also be input bytes mapped from their file (``init(mapped:reservation:)``): those
/// are read-only, and whoever reads them calls ``check()`` before trusting what it read.
final class PieceBuffer: @unchecked Sendable {
  /// The buffer's bytes (read-only for bytes mapped from a file: nothing writes a piece after it
  /// is filled, and mapped bytes are filled by the file).
  let bytes: UnsafeMutableRawBufferPointer
  /// What the buffer holds from the budget (``footprint(_:)``, or a mapping's reservation).
  let reservedBytes: Int
  private let allocation: UnsafeMutableRawBufferPointer
  private let mapping: MemoryMapping?
  private let file: MappedTensorBytes?
  private var reservation: MemoryReservation

  /// The size from which buffers are mapped, and the unit they are mapped in.
  static let mappingThreshold = 1 << 20
  /// The room around its bytes that a mapped buffer needs for a ``pageFrame``: the page before
  /// them and two after.
  static let frame = 3 * WriteBlocks.alignment

  /// The bytes a buffer of `count` bytes holds, which its reservation must cover: `count`, or
  /// `count` rounded up to whole MiB when it is mapped.
  static func footprint(_ count: Int) -> Int {
    count < mappingThreshold ? count : (count + mappingThreshold - 1) / mappingThreshold * mappingThreshold
  }

  /// What input bytes of `count` reserve when they may be mapped from their file
  /// (``init(mapped:reservation:)``): the larger of a mapping's pages and a buffer's footprint,
  /// which a read takes when no mapping is had.
  static func inputFootprint(_ count: Int, mapped: Bool) -> Int {
    mapped ? max(footprint(count), MappedTensorBytes.footprint(count)) : footprint(count)
  }

  /// A buffer of `count` bytes, held by `reservation` (of ``footprint(_:)`` bytes). A mapped one
  /// whose whole MiB leave room for a ``frame`` places its bytes where a page-aligned block
  /// written at file offset `fileOffset` would hold them (``pageFrame``).
  init(count: Int, reservation: consuming MemoryReservation, fileOffset: Int = 0) {
    precondition(
      reservation.bytes == Self.footprint(count),
      "Invalid buffer: \(count) bytes need a reservation of \(Self.footprint(count)), not \(reservation.bytes).")
    let mapping = count >= Self.mappingThreshold ? reservation.map(count: Self.footprint(count)) : nil
    if let mapping {
      allocation = UnsafeMutableRawBufferPointer(
        start: UnsafeMutableRawPointer(bitPattern: mapping.address), count: mapping.count)
    } else {
      reservation.unmapSpares()
      allocation = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
      reservation.budget.gauge.allocated(count)
    }
    self.mapping = mapping
    reservedBytes = reservation.bytes
    self.reservation = reservation
    file = nil
    let framed = Self.hasFrame(count: count, allocated: allocation.count, mapped: mapping != nil)
    let start = framed ? WriteBlocks.alignment + fileOffset % WriteBlocks.alignment : 0
    bytes = UnsafeMutableRawBufferPointer(rebasing: allocation[start..<start + count])
  }

  /// For a mapped buffer with room for it, the whole pages around its bytes: from the page
  /// boundary before them, with room for two pages after them. A shard writer that reaches the
  /// buffer at a file offset congruent to its address (the `fileOffset` it was made for) fills
  /// the head of the first page and the tail of the last and writes the pages where they are,
  /// instead of copying the bytes into a write block. `nil` for other buffers.
  var pageFrame: UnsafeMutableRawBufferPointer? {
    Self.hasFrame(count: bytes.count, allocated: allocation.count, mapped: mapping != nil) ? allocation : nil
  }

  /// Whether a buffer of `count` bytes in an allocation of `allocated` has a ``pageFrame``: it is
  /// mapped, and its whole MiB leave room for a ``frame``.
  private static func hasFrame(count: Int, allocated: Int, mapped: Bool) -> Bool {
    mapped && allocated - count >= frame
  }

  /// The bytes of `file`, held by `reservation` (at least ``MappedTensorBytes/footprint(_:)`` of
  /// them); read-only.
  init(mapped file: MappedTensorBytes, reservation: consuming MemoryReservation) {
    precondition(
      reservation.bytes >= MappedTensorBytes.footprint(file.bytes.count),
      "Invalid buffer: \(file.bytes.count) mapped bytes need a reservation of at least "
        + "\(MappedTensorBytes.footprint(file.bytes.count)), not \(reservation.bytes).")
    // No buffer takes these bytes: the file's pages do, and the gauge counts them.
    reservation.unmapSpares()
    reservation.budget.gauge.allocated(file.mappedCount)
    self.file = file
    reservedBytes = reservation.bytes
    self.reservation = reservation
    mapping = nil
    allocation = UnsafeMutableRawBufferPointer(mutating: file.bytes)
    bytes = allocation
  }

  /// Checks that bytes mapped from a file were what it held: a file that shrank while it was
  /// mapped showed zeros for the pages it lost (``MappedTensorBytes/check()``).
  ///
  /// - Throws: ``PipelineError`` (`io`) naming the file and tensor.
  func check() throws(PipelineError) {
    do {
      try file?.check()
    } catch {
      throw PipelineError(.io, "\(error)", path: error.file, tensor: error.tensor, cause: error)
    }
  }

  /// Runs `body`, which reads the bytes, then ``check()``s them. When `body` throws, a failed
  /// check is the error reported: zeros read from a file that shrank explain what `body` refused.
  func checking<Result>(_ body: () throws -> Result) throws -> Result {
    let result: Result
    do {
      result = try body()
    } catch {
      try check()
      throw error
    }
    try check()
    return result
  }

  deinit {
    if let file {
      // The mapping goes with `file`, the bytes with the reservation.
      reservation.budget.gauge.freed(file.mappedCount)
    } else if let mapping {
      reservation.returnMapping(mapping)
    } else {
      allocation.deallocate()
      reservation.budget.gauge.freed(bytes.count)
    }
    // What is left of the reservation is returned when it is destroyed, after this.
  }
}
