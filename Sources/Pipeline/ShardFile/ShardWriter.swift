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
/// on the threads of a ``BlockingIOExecutor`` while the writer copies the next bytes; when the
/// last byte is in, it is fsynced and renamed to its final name.
///
/// A writer goes through three phases, once each: idle (nothing written by this run), writing
/// (the partial file is open, from the start or continued at a ``ShardStart/resume(dataOffset:)``),
/// and finished (renamed into place, `done` in the journal). A finished writer writes nothing
/// again: a piece that reaches it is dropped (and its buffer's reservation with it).
///
/// The writer runs on the thread of a ``SerialThreadExecutor`` that the writers of a run share:
/// its methods make blocking calls and never suspend.
actor ShardWriter {
  /// A finished shard.
  struct Result: Sendable, Equatable {
    var fileName: String
    var size: Int
    var sha256: String
  }

  /// What a call to ``receive(_:)`` did.
  struct Receipt: Sendable {
    /// Data bytes newly written to the file.
    var written: Int
    /// Bytes of this piece spilled to disk (0 when it was written or staged in memory).
    var spilled: Int
    /// The shard, when this call finished it.
    var finished: Result?
  }

  private let executor: SerialThreadExecutor
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
  private let spillMemory: SpillMemory
  private var phase = Phase.idle
  private var cursor = 0
  private var committed = 0
  private var commits = 0
  private var staged: [Int: Piece] = [:]
  private var spilled: [Int: (record: SpillRecord, count: Int)] = [:]
  private var spillFile: SpillFile?

  init(
    shard: ConversionPlan.Shard, partialPath: String, finalPath: String, staging: StagingAccount,
    spillDirectory: String, spillCompression: SpillCompression, journal: Journal, commitInterval: Int,
    blocks: WriteBlocks, spillMemory: SpillMemory, executor: SerialThreadExecutor
  ) {
    self.executor = executor
    self.shard = shard
    self.partialPath = partialPath
    self.finalPath = finalPath
    self.staging = staging
    self.spillDirectory = spillDirectory
    self.spillCompression = spillCompression
    self.journal = journal
    self.commitInterval = commitInterval
    self.blocks = blocks
    self.spillMemory = spillMemory
  }

  /// Where a writer is in its life.
  private enum Phase {
    /// Nothing written by this run yet.
    case idle
    /// The partial file is open; `cursor` data bytes are in it.
    case writing(BlockFile)
    /// Renamed into place and recorded `done`.
    case finished(Result)
  }

  /// Continues the partial file whose header and first `dataOffset` data bytes ``RunState``
  /// found durable (``ShardStart/resume(dataOffset:)``): reads them back into the SHA-256 and
  /// cuts off anything written after them. Called once, before the first piece.
  ///
  /// - Throws: ``PipelineError`` (`io`) when the partial file can no longer be read as checked.
  func resume(dataOffset: Int) throws(PipelineError) {
    guard case .idle = phase else { preconditionFailure("\(shard.fileName) resumed twice") }
    let length = shard.headerBytes.count + dataOffset
    var hasher = SHA256()
    do {
      let descriptor = try FileDescriptor.open(FilePath(partialPath), .readOnly, options: [.closeOnExec])
      // A write block (in the budget) holds the bytes read back; none is being filled yet.
      let block = blocks.take()
      defer { blocks.give(block) }
      try descriptor.closeAfter {
        var offset = 0
        while offset < length {
          let count = min(block.bytes.count, length - offset)
          let bytes = UnsafeMutableRawBufferPointer(rebasing: block.bytes[..<count])
          try descriptor.readAll(fromAbsoluteOffset: Int64(offset), into: bytes)
          hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
          offset += count
        }
      }
    } catch {
      throw PipelineError(.io, "resuming \(partialPath): \(error)", path: partialPath, cause: error)
    }
    phase = .writing(try BlockFile(continuing: partialPath, length: length, hashed: hasher, blocks: blocks))
    cursor = dataOffset
    committed = cursor
  }

  /// Takes a piece: writes it and whatever it unblocks, or stages or spills it.
  ///
  /// - Throws: ``PipelineError`` (`io`) naming the file and the system error.
  func receive(_ piece: Piece) throws(PipelineError) -> Receipt {
    if case .finished = phase {
      return Receipt(written: 0, spilled: 0, finished: nil)
    }
    let before = cursor
    var spilledBytes = 0
    if piece.offset + piece.count <= cursor {
      // Already durable from an earlier run.
    } else if piece.offset <= cursor {
      try append(piece)
      try drain()
    } else if staging.tryAdd(piece) {
      staged[piece.offset] = piece
    } else {
      try spill(piece)
      spilledBytes = piece.count
    }
    // A piece not staged is dropped by the caller, and its buffer's reservation with it.
    return Receipt(
      written: cursor - before, spilled: spilledBytes,
      finished: cursor == shard.header.dataLength ? try finish() : nil)
  }

  /// Finishes a shard with no data (all its tensors are empty).
  func finishIfEmpty() throws(PipelineError) -> Result? {
    guard shard.header.dataLength == 0, case .idle = phase else { return nil }
    return try finish()
  }

  /// Writes staged and spilled pieces that are now at the cursor (a staged piece's buffer is
  /// freed as it leaves `staged`; a spilled one is read back into the run's one read-back buffer).
  private func drain() throws(PipelineError) {
    while true {
      if let piece = staged.removeValue(forKey: cursor) {
        staging.remove(piece)
        try append(piece)
      } else if let entry = spilled.removeValue(forKey: cursor) {
        try spillMemory.readingBack(count: entry.count) { buffer throws(PipelineError) in
          do {
            try spillFile!.read(entry.record, into: buffer)
          } catch {
            throw PipelineError(
              .io, "reading back spilled data for \(shard.fileName): \(error)", path: spillDirectory, cause: error)
          }
          try append(UnsafeRawBufferPointer(buffer))
        }
      } else {
        return
      }
    }
  }

  private func spill(_ piece: Piece) throws(PipelineError) {
    do {
      if spillFile == nil {
        spillFile = try SpillFile(directory: spillDirectory, compression: spillCompression)
      }
      let record = try spillMemory.spilling { () throws(SpillError) in
        try spillFile!.append(UnsafeRawBufferPointer(piece.buffer.bytes), elementWidth: piece.elementWidth)
      }
      spilled[piece.offset] = (record, piece.count)
      FaultInjection.spilled()
    } catch {
      throw PipelineError(
        .io, "spilling staged data of \(shard.fileName) to \(spillDirectory): \(error)", path: spillDirectory,
        cause: error)
    }
    try piece.buffer.check()
  }

  /// Appends the bytes of `piece` from the cursor on: the whole piece from its own buffer's pages
  /// where it can (``BlockFile/append(_:)-(PieceBuffer)``), or the part an earlier run did not
  /// write; bytes mapped from the input are checked before anything commits them.
  private func append(_ piece: Piece) throws(PipelineError) {
    let file = try openIfNeeded()
    if piece.offset == cursor {
      try file.append(piece.buffer)
    } else {
      try file.append(UnsafeRawBufferPointer(rebasing: piece.buffer.bytes[(cursor - piece.offset)...]))
    }
    try piece.buffer.check()
    try advance(to: piece.offset + piece.count)
  }

  /// Appends `bytes` at the cursor.
  private func append(_ bytes: UnsafeRawBufferPointer) throws(PipelineError) {
    try openIfNeeded().append(bytes)
    try advance(to: cursor + bytes.count)
  }

  /// Moves the cursor to `end` after an append, and commits when enough has been written since
  /// the last commit.
  private func advance(to end: Int) throws(PipelineError) {
    cursor = end
    try FaultInjection.checkWrite(path: partialPath, total: cursor)
    if cursor - committed >= commitInterval && cursor < shard.header.dataLength {
      commit()
    }
  }

  /// Has everything written so far made durable and then recorded in the journal, while the
  /// writer goes on.
  private func commit() {
    guard case .writing(let file) = phase else { return }
    commits += 1
    let (journal, fileName, length, number) = (journal, shard.fileName, shard.headerBytes.count + cursor, commits)
    file.commit { () throws(PipelineError) in
      try journal.commit(fileName, length: length)
      FaultInjection.reach("commit:\(fileName):\(number)")
    }
    committed = cursor
  }

  private func openIfNeeded() throws(PipelineError) -> BlockFile {
    switch phase {
    case .writing(let file): return file
    case .finished: preconditionFailure("\(shard.fileName) is finished; nothing of it is written again")
    case .idle: break
    }
    let created = try BlockFile(creating: partialPath, blocks: blocks)
    phase = .writing(created)
    try shard.headerBytes.withUnsafeBytes { header in
      Swift.Result { () throws(PipelineError) in try created.append(header) }
    }.get()
    return created
  }

  /// Makes the file durable, renames it into place, makes the rename durable (an fsync of the
  /// folder it went to), and only then records `done`: a journal never claims a shard that a
  /// power loss could take back.
  private func finish() throws(PipelineError) -> Result {
    let file = try openIfNeeded()
    // `finish` closes the file whether or not it succeeds: nothing may close it again.
    phase = .idle
    let digest = ChecksumList.hex(try file.finish())
    guard rename(partialPath, finalPath) == 0 else {
      throw PipelineError.systemCall("rename", Errno(rawValue: errno), path: partialPath)
    }
    let folder = (finalPath as NSString).deletingLastPathComponent
    try OutputDirectory.syncDirectory(folder.isEmpty ? "." : folder)
    try? spillFile?.remove()
    spillFile = nil
    try journal.done(shard.fileName, size: shard.fileSize, sha256: digest)
    let result = Result(fileName: shard.fileName, size: shard.fileSize, sha256: digest)
    phase = .finished(result)
    FaultInjection.reach("done:\(shard.fileName)")
    return result
  }

  /// Closes the file and removes spill data, when a run stops early.
  func abandon() {
    if case .writing(let file) = phase {
      file.close()
      phase = .idle
    }
    try? spillFile?.remove()
    spillFile = nil
    for piece in staged.values { staging.remove(piece) }
    staged = [:]
  }
}
