import CPlatform
import Crypto
import Foundation
import Synchronization
import SystemPackage
import Testing

@testable import Pipeline

@Suite("BlockFile")
struct BlockFileTests {
  /// Two pages per block, so that appends cross blocks and pages in every way.
  static let blocks = WriteBlocks(
    size: 2 * WriteBlocks.alignment,
    reservation: MemoryBudget(capacity: 8 * WriteBlocks.alignment).tryReserve(8 * WriteBlocks.alignment)!)

  @Test(
    "appends of any length, across pages and blocks, land byte for byte and hash to the file's SHA-256, with and without direct I/O",
    arguments: [true, false])
  func appendsLandInOrder(directIO: Bool) throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/out.partial"
      let source = SpillTestData.randomBytes(count: 140_000, seed: 21)
      let file = try BlockFile(creating: path, blocks: Self.blocks, directIO: directIO)
      var taken = 0
      for length in [0, 1, 4095, 1, 4096, 4097, 8191, 8192, 8193, 3, 20_000, 0, 7, 12_288]
        + Array(repeating: 2_900, count: 20)
      {
        try source.withUnsafeBytes { bytes in
          try file.append(UnsafeRawBufferPointer(rebasing: bytes[taken..<taken + length]))
        }
        taken += length
        #expect(file.length == taken)
        if !directIO {
          // Only new bytes, at the end: never padding past what was appended.
          #expect(try fileSize(path) <= UInt64(taken))
        }
      }
      let digest = try file.finish()
      #expect(try contents(path) == Array(source[..<taken]))
      #expect(digest == SHA256.hash(data: source[..<taken]))
      if directIO {
        withKnownIssue("the file system of the temporary folder refuses O_DIRECT") {
          #expect(file.usesDirectIO)
        } when: {
          !Self.takesDirectIO(directory)
        }
      } else {
        #expect(!file.usesDirectIO)
      }
    }
  }

  @Test(
    "a direct write refused with EINVAL mid-file is written again through the page cache, and the rest of the file without direct I/O"
  )
  func refusedDirectWriteFallsBack() throws {
    try withTemporaryDirectory { directory in
      guard Self.takesDirectIO(directory) else {
        withKnownIssue("the file system of the temporary folder refuses O_DIRECT") {
          Issue.record("no direct I/O to fall back from")
        }
        return
      }
      let path = directory + "/out.partial"
      let source = SpillTestData.randomBytes(count: 60_000, seed: 25)
      // The file system takes the flag, then refuses the first write at or past 20,000 bytes.
      let refuse = Atomic(true)
      let writes = Mutex<[Range<Int64>]>([])
      let file = try BlockFile(creating: path, blocks: Self.blocks) { descriptor, bytes, offset throws(Errno) in
        if offset >= 20_000, refuse.exchange(false, ordering: .relaxed) { throw .invalidArgument }
        try BlockFileStorage.pwrite(descriptor, bytes, offset)
        writes.withLock { $0.append(offset..<offset + Int64(bytes.count)) }
      }
      #expect(file.usesDirectIO)
      for start in stride(from: 0, to: source.count, by: 3_000) {
        try source.withUnsafeBytes { try file.append(UnsafeRawBufferPointer(rebasing: $0[start..<start + 3_000])) }
      }
      let digest = try file.finish()
      let refused = !refuse.load(ordering: .relaxed)
      #expect(refused)
      #expect(!file.usesDirectIO)
      #expect(try contents(path) == source)
      #expect(digest == SHA256.hash(data: source))
      // The last write is the last block's new bytes, ending at the file's length: not a padded page.
      #expect(writes.withLock { $0.last?.upperBound } == Int64(source.count))
    }
  }

  @Test(
    "a piece whose buffer lines up with the file is written from its own pages, between copied appends, with and without direct I/O",
    arguments: [true, false])
  func piecesLinedUpWithTheFileAreWrittenWhereTheyAre(directIO: Bool) throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/out.partial"
      let budget = MemoryBudget(capacity: 64 << 20)
      // The page ranges that writes came from, to tell a piece's own pages from a write block's.
      let sources = Mutex<[Range<UInt>]>([])
      let file = try BlockFile(creating: path, blocks: Self.blocks, directIO: directIO) {
        descriptor, bytes, offset throws(Errno) in
        let start = UInt(bitPattern: bytes.baseAddress)
        sources.withLock { $0.append(start..<start + UInt(bytes.count)) }
        try BlockFileStorage.pwrite(descriptor, bytes, offset)
      }
      var expected: [UInt8] = []
      var pieceRanges: [Range<UInt>] = []
      /// A mapped buffer of `count` random bytes made for file offset `fileOffset`, appended whole.
      func appendPiece(count: Int, fileOffset: Int, seed: UInt64) throws -> PieceBuffer {
        let (buffer, bytes) = try Self.piece(count: count, fileOffset: fileOffset, seed: seed, budget: budget)
        try file.append(buffer)
        expected += bytes
        return buffer
      }
      func appendCopy(count: Int, seed: UInt64) throws {
        let bytes = SpillTestData.randomBytes(count: count, seed: seed)
        try bytes.withUnsafeBytes { try file.append($0) }
        expected += bytes
      }
      try appendCopy(count: 1_000, seed: 31)
      // Lined up, mid-page: written where it is (the buffer is let go of here; the block keeps it).
      let lined = try appendPiece(count: 1_500_000, fileOffset: file.length, seed: 32)
      let linedFrame = try #require(lined.pageFrame)
      pieceRanges.append(
        UInt(bitPattern: linedFrame.baseAddress)..<UInt(bitPattern: linedFrame.baseAddress) + UInt(linedFrame.count))
      try appendCopy(count: 5_000, seed: 33)
      // Made for another offset, and one with no room for a frame (whole MiB): both copied.
      _ = try appendPiece(count: 1_200_000, fileOffset: file.length + 1, seed: 34)
      let unframed = try appendPiece(count: 2 << 20, fileOffset: file.length, seed: 35)
      #expect(unframed.pageFrame == nil)
      try appendCopy(count: 77, seed: 36)
      let digest = try file.finish()
      #expect(try contents(path) == expected)
      #expect(digest == SHA256.hash(data: expected))
      let written = sources.withLock { $0 }
      let fromPieces = written.filter { range in pieceRanges.contains { $0.contains(range.lowerBound) } }
      // The lined-up piece's bytes went out from its own pages, in one write.
      #expect(fromPieces.count == 1)
      #expect(fromPieces.first.map { $0.count >= 1_500_000 } == true)
      if directIO && Self.takesDirectIO(directory) {
        #expect(file.usesDirectIO)
      }
    }
  }

  @Test(
    "a piece written from its own pages takes one of the block slots: with every slot in flight, the next append waits for a write",
    arguments: [true, false])
  func piecesInFlightTakeBlockSlots(directIO: Bool) throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/out.partial"
      let budget = MemoryBudget(capacity: 64 << 20)
      let blocks = WriteBlocks(
        size: 2 * WriteBlocks.alignment,
        reservation: budget.tryReserve(WriteBlocks.count * 2 * WriteBlocks.alignment)!)
      // Every write waits at the gate until the test opens it.
      let gate = DispatchSemaphore(value: 0)
      let file = try BlockFile(creating: path, blocks: blocks, directIO: directIO) {
        descriptor, bytes, offset throws(Errno) in
        gate.wait()
        gate.signal()
        try BlockFileStorage.pwrite(descriptor, bytes, offset)
      }
      var expected: [UInt8] = []
      func piece(seed: UInt64) throws -> PieceBuffer {
        let (buffer, bytes) = try Self.piece(count: 1_100_000, fileOffset: expected.count, seed: seed, budget: budget)
        #expect(buffer.pageFrame != nil)
        expected += bytes
        return buffer
      }
      for seed in 0..<UInt64(WriteBlocks.count) {
        try file.append(piece(seed: 40 + seed))
      }
      let last = try piece(seed: 50)
      let appended = Locked(false)
      let done = DispatchSemaphore(value: 0)
      nonisolated(unsafe) let writer = file
      Thread.detachNewThread {
        try? writer.append(last)
        appended.withLock { $0 = true }
        done.signal()
      }
      Thread.sleep(forTimeInterval: 0.2)
      #expect(!appended.value)
      gate.signal()
      done.wait()
      #expect(try file.finish() == SHA256.hash(data: expected))
      #expect(try contents(path) == expected)
    }
  }

  @Test("continuing mid-page keeps the first bytes, drops the rest, and appends after them")
  func continuingMidPage() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/out.partial"
      let first = SpillTestData.randomBytes(count: 10_000, seed: 22)
      let second = SpillTestData.randomBytes(count: 9_000, seed: 23)
      let file = try BlockFile(creating: path, blocks: Self.blocks)
      try first.withUnsafeBytes { try file.append($0) }
      _ = try file.finish()
      let kept = 6_001
      var hashed = SHA256()
      hashed.update(data: first[..<kept])
      let continued = try BlockFile(continuing: path, length: kept, hashed: hashed, blocks: Self.blocks)
      #expect(continued.length == kept)
      try second.withUnsafeBytes { try continued.append($0) }
      let digest = try continued.finish()
      #expect(try contents(path) == Array(first[..<kept]) + second)
      #expect(digest == SHA256.hash(data: first[..<kept] + second))
    }
  }

  @Test("a commit sees every byte appended before it on disk, and its failure is reported by the next call")
  func commits() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/out.partial"
      let source = SpillTestData.randomBytes(count: 50_000, seed: 24)
      let file = try BlockFile(creating: path, blocks: Self.blocks)
      let seen = Mutex<[UInt8]?>(nil)
      try source.withUnsafeBytes { try file.append(UnsafeRawBufferPointer(rebasing: $0[..<30_001])) }
      file.commit { () throws(PipelineError) in
        let bytes = FileManager.default.contents(atPath: path).map { Array($0.prefix(30_001)) }
        seen.withLock { $0 = bytes }
      }
      try source.withUnsafeBytes { try file.append(UnsafeRawBufferPointer(rebasing: $0[30_001...])) }
      file.commit { () throws(PipelineError) in throw PipelineError(.io, "the journal is gone") }
      let error = #expect(throws: PipelineError.self) { try file.finish() }
      #expect(error?.message == "the journal is gone")
      #expect(seen.withLock { $0 } == Array(source[..<30_001]))
    }
  }

  /// A buffer of `count` random bytes (from `seed`) held by `budget`, made for file offset
  /// `fileOffset` (``PieceBuffer/init(count:reservation:fileOffset:)``), and its bytes.
  static func piece(count: Int, fileOffset: Int, seed: UInt64, budget: MemoryBudget) throws -> (PieceBuffer, [UInt8]) {
    guard let reservation = budget.tryReserve(PieceBuffer.footprint(count)) else {
      throw PipelineError(.io, "the test's budget is too small")
    }
    let buffer = PieceBuffer(count: count, reservation: reservation, fileOffset: fileOffset)
    let bytes = SpillTestData.randomBytes(count: count, seed: seed)
    bytes.withUnsafeBytes { buffer.bytes.copyMemory(from: $0) }
    return (buffer, bytes)
  }

  /// Whether the file system of `directory` takes `O_DIRECT` (tmpfs before Linux 6.6 does not).
  static func takesDirectIO(_ directory: String) -> Bool {
    let flag = safeshard_direct_io_flag()
    guard flag != 0 else { return false }
    let descriptor = open(directory + "/direct-io-probe", O_RDWR | O_CREAT | flag, 0o600)
    guard descriptor >= 0 else { return false }
    close(descriptor)
    unlink(directory + "/direct-io-probe")
    return true
  }

  private func contents(_ path: String) throws -> [UInt8] {
    Array(try #require(FileManager.default.contents(atPath: path)))
  }
}
