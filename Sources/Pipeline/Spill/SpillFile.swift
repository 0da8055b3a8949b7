import SafeTensors
import Synchronization
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An append-only file of spilled staging data, written as checksummed ``SpillCodec`` blocks and read back by record.
///
/// The file is created as `spill-<n>.bin` in the given directory (never a `.safetensors` name, so no loader picks it
/// up) and deleted by ``remove()``, or when the object is released without it. Each append is split into blocks of at
/// most ``blockLength`` original bytes, so encoding needs little memory beyond the caller's bytes.
///
/// All calls block on I/O (`pwrite`, `pread`): run them off the cooperative thread pool. Appends are serialised with
/// each other; reads take no lock and may run alongside appends and other reads.
public final class SpillFile: Sendable {
  /// The spill file's path.
  public let path: String
  /// How blocks are stored.
  public let compression: SpillCompression
  /// The most original bytes in one block.
  public let blockLength: Int

  /// The default ``blockLength``, 1 MiB: LZ4's window is 64 KiB, so larger blocks compress no better, and a block's
  /// planes stay in cache while they are compressed.
  public static let defaultBlockLength = 1 << 20

  private struct State {
    var length = 0
    var bytesSpilled = 0
    var removed = false
  }

  private let descriptor: FileDescriptor
  private let state = Mutex(State())

  /// The most temporary memory one ``append(_:elementWidth:)`` or ``read(_:into:)`` of a piece of `pieceLength`
  /// bytes allocates: one encoded block (header and bytes) and the codec's byte planes of one block. Released when the
  /// call returns; the pipeline reserves it from its memory budget.
  public static func scratchLength(pieceLength: Int, blockLength: Int = defaultBlockLength) -> Int {
    SpillBlockHeader.maximumLength + 2 * min(blockLength, pieceLength)
  }

  /// The bytes written to the file: every record's ``SpillRecord/storedLength``.
  public var bytesOnDisk: Int { state.withLock { $0.length } }

  /// The bytes appended: every record's ``SpillRecord/originalLength``.
  public var bytesSpilled: Int { state.withLock { $0.bytesSpilled } }

  /// Creates a new, uniquely named spill file in `directory`.
  ///
  /// The name is `spill-<n>.bin` with the first `n` not taken (`O_CREAT | O_EXCL`, opened with `O_CLOEXEC`).
  ///
  /// - Parameters:
  ///   - directory: an existing directory on a local disk.
  ///   - compression: how blocks are stored.
  ///   - blockLength: the most original bytes in one block, from 1 to ``SpillCodec/maximumBlockLength``.
  /// - Throws: ``SpillError/Code/io`` naming the path when the file cannot be created.
  public init(directory: String, compression: SpillCompression, blockLength: Int = defaultBlockLength)
    throws(SpillError)
  {
    precondition(
      (1...SpillCodec.maximumBlockLength).contains(blockLength), "spill block length \(blockLength) is out of range")
    var attempt = 0
    while true {
      let path = FilePath(directory).appending("spill-\(nextSpillFileNumber.add(1, ordering: .relaxed).oldValue).bin")
      do {
        descriptor = try FileDescriptor.open(
          path, .readWrite, options: [.create, .exclusiveCreate, .closeOnExec], permissions: [.ownerReadWrite])
        self.path = path.string
        break
      } catch Errno.fileExists where attempt < 10_000 {
        attempt += 1
      } catch let failure as Errno {
        throw .systemCall("open", failure, what: "cannot create spill file", file: path.string)
      } catch {
        throw SpillError(.io, "cannot create spill file: \(error)", file: path.string)
      }
    }
    self.compression = compression
    self.blockLength = blockLength
  }

  deinit {
    try? descriptor.close()
    if !state.withLock({ $0.removed }) { unlink(path) }
  }

  /// Appends `bytes` at the end of the file and returns where they are.
  ///
  /// Encodes `bytes` block by block with a ``SpillCodec`` of this file's compression and `elementWidth`, writing each
  /// block with `pwrite` (short writes continue, interrupted calls retry). When a write fails, the file's length is
  /// unchanged: the next append writes over the partial record.
  ///
  /// - Parameters:
  ///   - bytes: the bytes to spill, any length.
  ///   - elementWidth: the byte width of their elements, 1, 2, 4 or 8.
  /// - Returns: the record to pass to ``read(_:into:)``.
  /// - Throws: ``SpillError/Code/io`` naming the path, the offset and the system's reason when a write fails.
  public func append(_ bytes: UnsafeRawBufferPointer, elementWidth: Int) throws(SpillError) -> SpillRecord {
    let codec = SpillCodec(compression: compression, elementWidth: elementWidth)
    let scratchLength = codec.maximumEncodedLength(byteCount: min(blockLength, bytes.count))
    return try withUnsafeTemporaryAllocation(byteCount: scratchLength, alignment: 64) { scratch throws(SpillError) in
      try state.withLock { state throws(SpillError) in
        precondition(!state.removed, "append to a removed spill file \(path)")
        var offset = state.length
        var consumed = 0
        while consumed < bytes.count {
          let block = UnsafeRawBufferPointer(rebasing: bytes[consumed..<min(consumed + blockLength, bytes.count)])
          let length = codec.encode(block, into: scratch)
          try write(UnsafeRawBufferPointer(rebasing: scratch[..<length]), at: offset)
          offset += length
          consumed += block.count
        }
        let record = SpillRecord(offset: state.length, storedLength: offset - state.length, originalLength: bytes.count)
        state.length = offset
        state.bytesSpilled += bytes.count
        return record
      }
    }
  }

  /// Reads a record back into `buffer`.
  ///
  /// Reads each block with `pread` (short reads continue, interrupted calls retry) and decodes it with
  /// ``SpillCodec/decode(_:into:)``, which checks every length and the block's checksum.
  ///
  /// - Parameters:
  ///   - record: a record that ``append(_:elementWidth:)`` of this file returned.
  ///   - buffer: exactly ``SpillRecord/originalLength`` bytes.
  /// - Throws: ``SpillError/Code/corruptBlock`` naming the path and the block's offset when the file was damaged or
  ///   truncated since it was written; ``SpillError/Code/io`` when a read fails. `buffer` may then hold part of the
  ///   record.
  public func read(_ record: SpillRecord, into buffer: UnsafeMutableRawBufferPointer) throws(SpillError) {
    precondition(buffer.count == record.originalLength, "spill read buffer does not match the record's length")
    let (length, removed) = state.withLock { ($0.length, $0.removed) }
    precondition(!removed, "read from a removed spill file \(path)")
    precondition(record.offset + record.storedLength <= length, "spill record is not from \(path)")
    let scratchLength = SpillBlockHeader.maximumLength + min(blockLength, record.originalLength)
    try withUnsafeTemporaryAllocation(byteCount: scratchLength, alignment: 64) { scratch throws(SpillError) in
      let end = record.offset + record.storedLength
      var offset = record.offset
      var produced = 0
      while offset < end {
        do throws(SpillError) {
          let prefix = UnsafeMutableRawBufferPointer(
            rebasing: scratch[..<min(SpillBlockHeader.maximumLength, end - offset)])
          try read(into: prefix, at: offset)
          let header = try SpillBlockHeader.parse(UnsafeRawBufferPointer(prefix))
          guard header.blockLength <= min(end - offset, scratch.count),
            header.originalLength <= buffer.count - produced
          else {
            throw SpillError(
              .corruptBlock,
              "block of \(header.blockLength) bytes for \(header.originalLength) does not fit the record "
                + "(\(end - offset) stored and \(buffer.count - produced) original bytes left)")
          }
          if header.blockLength > prefix.count {
            try read(
              into: UnsafeMutableRawBufferPointer(rebasing: scratch[prefix.count..<header.blockLength]),
              at: offset + prefix.count)
          }
          try SpillCodec.decode(
            UnsafeRawBufferPointer(rebasing: scratch[..<header.blockLength]),
            into: UnsafeMutableRawBufferPointer(rebasing: buffer[produced..<produced + header.originalLength]))
          offset += header.blockLength
          produced += header.originalLength
        } catch {
          throw error.located(file: path, offset: offset)
        }
      }
      guard produced == buffer.count else {
        throw SpillError(
          .corruptBlock, "record decodes to \(produced) bytes, expected \(buffer.count)", file: path,
          offset: record.offset)
      }
    }
  }

  /// Deletes the file (`unlink`) and frees its disk space at once (`ftruncate`); calling it again does nothing.
  ///
  /// After it, the file takes no more appends or reads.
  ///
  /// - Throws: ``SpillError/Code/io`` naming the path when the file cannot be deleted.
  public func remove() throws(SpillError) {
    try state.withLock { state throws(SpillError) in
      guard !state.removed else { return }
      guard unlink(path) == 0 || errno == ENOENT else {
        throw .systemCall("unlink", Errno(rawValue: errno), what: "cannot delete spill file", file: path)
      }
      state.removed = true
      _ = ftruncate(descriptor.rawValue, 0)
    }
  }

  private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(SpillError) {
    do {
      try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes)
    } catch let failure as Errno {
      throw .systemCall("pwrite", failure, what: "writing \(bytes.count) bytes", file: path, offset: offset)
    } catch {
      throw SpillError(.io, "pwrite of \(bytes.count) bytes failed: \(error)", file: path, offset: offset)
    }
  }

  private func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SpillError) {
    do {
      try descriptor.readAll(fromAbsoluteOffset: Int64(offset), into: buffer)
    } catch {
      switch error {
      case .system(let errno):
        throw .systemCall("pread", errno, what: "reading \(buffer.count) bytes", file: path, offset: offset)
      case .endOfFile(let read):
        throw SpillError(
          .corruptBlock, "spill file ends \(buffer.count - read) bytes early", file: path, offset: offset)
      }
    }
  }
}

/// The number the next spill file's name tries first, shared by all spill files of the process.
private let nextSpillFileNumber = Atomic<Int>(0)
