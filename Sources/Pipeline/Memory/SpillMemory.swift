import Synchronization

/// The memory the shard writers spill with, reserved once for the run (``MemoryShare/readBackBytes``
/// and ``MemoryShare/spillScratchBytes``): one buffer that spilled pieces are read back into, and
/// the scratch the spill codec allocates while it writes or reads a piece.
///
/// One of each serves every writer: spilling and reading back take a lock, so two writers never
/// use them at once (the run calls one writer at a time anyway).
final class SpillMemory: Sendable {
  private let readBack: PieceBuffer
  private let scratchBytes: Int
  private let gauge: MemoryGauge
  private let lock = Mutex(())

  /// - Parameters:
  ///   - readBack: a buffer as large as the largest piece.
  ///   - scratchBytes: what ``SpillFile/scratchLength(pieceLength:blockLength:)`` says for the
  ///     largest piece; its reservation is held by the run.
  ///   - gauge: where the scratch is counted while a call uses it.
  init(readBack: PieceBuffer, scratchBytes: Int, gauge: MemoryGauge) {
    self.readBack = readBack
    self.scratchBytes = scratchBytes
    self.gauge = gauge
  }

  /// Runs `body`, which spills a piece, with the spill scratch counted.
  func spilling<Result: Sendable, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
    try lock.withLock { _ throws(Failure) in try gauge.counting(scratchBytes, body) }
  }

  /// Runs `body` with the first `count` bytes of the read-back buffer, and the spill scratch
  /// counted, to read a spilled piece back and write it.
  func readingBack<Result: Sendable, Failure: Error>(
    count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
  ) throws(Failure) -> Result {
    precondition(count <= readBack.bytes.count, "Invalid read-back: a piece of \(count) bytes is larger than any job.")
    return try lock.withLock { _ throws(Failure) in
      try gauge.counting(scratchBytes) { () throws(Failure) in
        try body(UnsafeMutableRawBufferPointer(rebasing: readBack.bytes[..<count]))
      }
    }
  }
}
