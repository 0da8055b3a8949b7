import Crypto
import Foundation
import SafeTensors
import Synchronization
import SystemPackage

/// Writes one output shard front to back, taking pieces in any order.
///
/// A piece at the write cursor is appended at once, followed by every staged piece that has
/// become contiguous; a piece ahead of the cursor waits in memory while the shared staging
/// account has room, and is spilled to disk (``SpillFile``) when it has not. The file is written
/// under a partial name in the state folder through a ``BlockFile``, which writes and hashes it
/// on queues of its own while the writer copies the next bytes; when the last byte is in, it is
/// fsynced and renamed to its final name.
///
/// The writer runs on an executor of its own (``IOExecutor``): its methods make blocking calls
/// and never suspend.
actor ShardWriter {
  /// A finished shard.
  struct Result: Sendable, Equatable {
    var fileName: String
    var size: Int
    var sha256: String
  }

  /// What a call to ``receive(_:)`` did.
  struct Receipt: Sendable {
    /// Budget bytes to release: pieces written or spilled.
    var released: Int
    /// Data bytes newly written to the file.
    var written: Int
    /// Bytes of this piece spilled to disk (0 when it was written or staged in memory).
    var spilled: Int
    /// The shard, when this call finished it.
    var finished: Result?
  }

  private let executor: IOExecutor
  nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

  private let shard: ConversionPlan.Shard
  private let partialPath: String
  private let finalPath: String
  private let staging: StagingAccount
  private let spillDirectory: String
  private let spillCompression: SpillCompression
  private let journal: Journal
  private let commitInterval: Int
  private let blocks: WriteBlocks
  private var file: BlockFile?
  private var cursor = 0
  private var committed = 0
  private var staged: [Int: Piece] = [:]
  private var spilled: [Int: (record: SpillRecord, count: Int)] = [:]
  private var spillFile: SpillFile?

  init(
    shard: ConversionPlan.Shard, partialPath: String, finalPath: String, staging: StagingAccount,
    spillDirectory: String, spillCompression: SpillCompression, journal: Journal, commitInterval: Int,
    blocks: WriteBlocks
  ) {
    self.executor = IOExecutor(label: "safeshard.writer.\(shard.fileName)")
    self.shard = shard
    self.partialPath = partialPath
    self.finalPath = finalPath
    self.staging = staging
    self.spillDirectory = spillDirectory
    self.spillCompression = spillCompression
    self.journal = journal
    self.commitInterval = commitInterval
    self.blocks = blocks
  }

  /// The data offset from which this writer still needs bytes.
  var dataCursor: Int { cursor }

  /// Continues a partial file whose first `length` bytes (header included) the journal says are
  /// durable: reads them back into the SHA-256, cuts off anything written after them, and, when
  /// that was the whole shard, finishes it.
  ///
  /// A partial file shorter than `length`, or a header that is not the planned one, means the
  /// state is damaged: the shard starts over.
  func resume(committedLength length: Int) throws(PipelineError) -> Result? {
    let headerCount = shard.headerBytes.count
    guard length >= headerCount, length <= shard.fileSize,
      let handle = FileHandle(forReadingAtPath: partialPath),
      let size = try? handle.seekToEnd(), size >= UInt64(length)
    else { return nil }
    defer { try? handle.close() }
    var hasher = SHA256()
    var offset = 0
    do {
      try handle.seek(toOffset: 0)
      while offset < length {
        guard let chunk = try handle.read(upToCount: min(8 << 20, length - offset)), !chunk.isEmpty else { return nil }
        if offset < headerCount
          && Array(chunk.prefix(headerCount - offset))
            != Array(shard.headerBytes[offset..<min(headerCount, offset + chunk.count)])
        {
          return nil
        }
        hasher.update(data: chunk)
        offset += chunk.count
      }
    } catch {
      throw PipelineError(.io, "resuming \(partialPath): \(error)")
    }
    file = try BlockFile(continuing: partialPath, length: length, hashed: hasher, blocks: blocks)
    cursor = length - headerCount
    committed = cursor
    return cursor == shard.header.dataLength ? try finish() : nil
  }

  /// Takes a piece: writes it and whatever it unblocks, or stages or spills it.
  ///
  /// - Throws: ``PipelineError`` (`io`) naming the file and the system error.
  func receive(_ piece: Piece) throws(PipelineError) -> Receipt {
    let before = cursor
    var released = 0
    var spilledBytes = 0
    if piece.offset + piece.count <= cursor {
      // Already durable from an earlier run.
      released += piece.count
    } else if piece.offset <= cursor {
      try append(UnsafeRawBufferPointer(rebasing: piece.buffer.bytes[(cursor - piece.offset)...]))
      released += piece.count
      released += try drain()
    } else if staging.tryAdd(piece.count) {
      staged[piece.offset] = piece
    } else {
      try spill(piece)
      released += piece.count
      spilledBytes = piece.count
    }
    return Receipt(
      released: released, written: cursor - before, spilled: spilledBytes,
      finished: cursor == shard.header.dataLength ? try finish() : nil)
  }

  /// Finishes a shard with no data (all its tensors are empty).
  func finishIfEmpty() throws(PipelineError) -> Result? {
    guard shard.header.dataLength == 0 else { return nil }
    return try finish()
  }

  /// Writes staged and spilled pieces that are now at the cursor; returns the budget bytes they
  /// held.
  private func drain() throws(PipelineError) -> Int {
    var released = 0
    while true {
      if let piece = staged.removeValue(forKey: cursor) {
        staging.remove(piece.count)
        try append(UnsafeRawBufferPointer(piece.buffer.bytes))
        released += piece.count
      } else if let entry = spilled.removeValue(forKey: cursor) {
        let buffer = PieceBuffer(count: entry.count)
        do {
          try spillFile!.read(entry.record, into: buffer.bytes)
        } catch {
          throw PipelineError(.io, "reading back spilled data for \(shard.fileName): \(error)")
        }
        try append(UnsafeRawBufferPointer(buffer.bytes))
      } else {
        return released
      }
    }
  }

  private func spill(_ piece: Piece) throws(PipelineError) {
    do {
      if spillFile == nil {
        spillFile = try SpillFile(directory: spillDirectory, compression: spillCompression)
      }
      let record = try spillFile!.append(UnsafeRawBufferPointer(piece.buffer.bytes), elementWidth: piece.elementWidth)
      spilled[piece.offset] = (record, piece.count)
    } catch {
      throw PipelineError(.io, "spilling staged data of \(shard.fileName) to \(spillDirectory): \(error)")
    }
  }

  /// Appends at the cursor, opening the partial file (and writing the header) on first use.
  private func append(_ bytes: UnsafeRawBufferPointer) throws(PipelineError) {
    try openIfNeeded().append(bytes)
    cursor += bytes.count
    try FaultInjection.checkWrite(path: partialPath, total: cursor)
    if cursor - committed >= commitInterval && cursor < shard.header.dataLength {
      commit()
    }
  }

  /// Has everything written so far made durable and then recorded in the journal, while the
  /// writer goes on.
  private func commit() {
    let (journal, fileName, length) = (journal, shard.fileName, shard.headerBytes.count + cursor)
    file?.commit { () throws(PipelineError) in try journal.commit(fileName, length: length) }
    committed = cursor
  }

  private func openIfNeeded() throws(PipelineError) -> BlockFile {
    if let file { return file }
    let created = try BlockFile(creating: partialPath, blocks: blocks)
    file = created
    try shard.headerBytes.withUnsafeBytes { header in
      Swift.Result { () throws(PipelineError) in try created.append(header) }
    }.get()
    return created
  }

  private func finish() throws(PipelineError) -> Result {
    let file = try openIfNeeded()
    self.file = nil
    let digest = ChecksumList.hex(try file.finish())
    guard rename(partialPath, finalPath) == 0 else {
      throw PipelineError(.io, "renaming \(partialPath) to \(finalPath): \(String(cString: strerror(errno)))")
    }
    try? spillFile?.remove()
    spillFile = nil
    try journal.done(shard.fileName, size: shard.fileSize, sha256: digest)
    return Result(fileName: shard.fileName, size: shard.fileSize, sha256: digest)
  }

  /// Closes the file and removes spill data, when a run stops early.
  func abandon() {
    file?.close()
    file = nil
    try? spillFile?.remove()
    spillFile = nil
    for piece in staged.values { staging.remove(piece.count) }
    staged = [:]
  }
}
