import Crypto
import Foundation
import SafeTensors
import SystemPackage

/// A file written front to back through ``WriteBlocks``, and its SHA-256: the owner only copies
/// bytes into blocks, while the threads of a ``BlockingIOExecutor`` write and hash them.
///
/// Appended bytes are copied into blocks. With direct I/O (`O_DIRECT`, where the file system
/// takes it) the output goes to the device without filling the page cache, and the final `fsync`
/// has little left to do: each block is written whole at a page-aligned offset, several at once.
/// A block that ends inside a page is written padded to the page; the bytes of that page are kept
/// and written again at the start of the next block, and ``finish()`` cuts the file to its
/// length. Where direct I/O is refused, only each block's new bytes are written, one block after
/// the other: the file only ever grows at its end, as append-only file systems require.
/// ``BlockFileStateMachine`` holds the rules of what waits for what.
///
/// Errors of the writes and commits are reported by the next call.
final class BlockFile {
  let path: String
  /// Bytes appended.
  private(set) var length: Int
  private let blocks: WriteBlocks
  private let storage: BlockFileStorage
  /// The appended bytes of the last, partial page (`length % alignment` of them).
  private var tail: [UInt8]

  /// Creates the file at `path`, or empties it.
  ///
  /// - Parameters:
  ///   - directIO: whether to try direct I/O (tests turn it off to check the other way).
  ///   - writeCall: how blocks are written (tests make the file system refuse a write).
  convenience init(
    creating path: String, blocks: WriteBlocks, directIO: Bool = true,
    writeCall: @escaping BlockFileStorage.WriteCall = BlockFileStorage.pwrite
  ) throws(PipelineError) {
    try self.init(
      path: path, length: 0, hashed: SHA256(), options: [.create, .truncate], blocks: blocks, directIO: directIO,
      writeCall: writeCall)
  }

  /// Opens the file at `path` to append after its first `length` bytes, cutting off the rest;
  /// `hashed` has taken those bytes.
  convenience init(continuing path: String, length: Int, hashed: sending SHA256, blocks: WriteBlocks)
    throws(PipelineError)
  {
    try self.init(
      path: path, length: length, hashed: hashed, options: [], blocks: blocks, directIO: true,
      writeCall: BlockFileStorage.pwrite)
  }

  private init(
    path: String, length: Int, hashed: sending SHA256, options: FileDescriptor.OpenOptions, blocks: WriteBlocks,
    directIO: Bool, writeCall: @escaping BlockFileStorage.WriteCall
  ) throws(PipelineError) {
    let tailCount = length % WriteBlocks.alignment
    var tail = [UInt8](repeating: 0, count: tailCount)
    let descriptor: FileDescriptor
    do {
      descriptor = try FileDescriptor.open(
        FilePath(path), .readWrite, options: options.union(.closeOnExec),
        permissions: [.ownerReadWrite, .groupRead, .otherRead])
    } catch {
      throw .systemCall("open", error as? Errno ?? .ioError, path: path)
    }
    do throws(PipelineError) {
      do {
        try descriptor.resize(to: Int64(length))
      } catch {
        throw .systemCall("ftruncate", error as? Errno ?? .ioError, path: path)
      }
      let read = tail.withUnsafeMutableBytes { buffer in
        Result { () throws(ReadAllError) in
          try descriptor.readAll(fromAbsoluteOffset: Int64(length - tailCount), into: buffer)
        }
      }
      switch read {
      case .success: break
      case .failure(.system(let errno)): throw .systemCall("pread", errno, path: path)
      case .failure(let error):
        throw PipelineError(.io, "\(path) ended while its last page was read", path: path, cause: error)
      }
    } catch {
      try? descriptor.close()
      throw error
    }
    self.path = path
    self.length = length
    self.blocks = blocks
    self.tail = tail
    storage = BlockFileStorage(
      path: path, descriptor: descriptor, hashed: hashed, directIO: directIO, blocks: blocks,
      executor: .shared, writeCall: writeCall)
  }

  /// Whether blocks go to the device around the page cache: direct I/O was asked for, the file
  /// system took it, and no write has been refused since.
  var usesDirectIO: Bool { storage.usesDirectIO }

  /// Appends `bytes`; blocks the calling thread while every block is in flight.
  func append(_ bytes: UnsafeRawBufferPointer) throws(PipelineError) {
    try checkFailure()
    var taken = 0
    while taken < bytes.count {
      let block = blocks.take()
      let count = min(block.bytes.count - tail.count, bytes.count - taken)
      UnsafeMutableRawBufferPointer(rebasing: block.bytes[tail.count...]).copyMemory(
        from: UnsafeRawBufferPointer(rebasing: bytes[taken..<taken + count]))
      submit(block, count: count)
      taken += count
    }
  }

  /// Appends the bytes of `buffer`, writing its pages where they are when its ``PieceBuffer/pageFrame``
  /// lines them up with the end of the file (else as ``append(_:)`` does); the block holds on to
  /// `buffer` until it is written and hashed. Blocks the calling thread while every block is in
  /// flight (``WriteBlocks/lend(_:of:)``).
  func append(_ buffer: PieceBuffer) throws(PipelineError) {
    guard let frame = buffer.pageFrame, let data = buffer.bytes.baseAddress,
      Int(bitPattern: data) % WriteBlocks.alignment == tail.count
    else { return try append(UnsafeRawBufferPointer(buffer.bytes)) }
    try checkFailure()
    // The frame has a page before the bytes and two after them: room for the tail and the padding.
    let pages = UnsafeMutableRawBufferPointer(
      start: data - tail.count, count: frame.baseAddress! + frame.count - data + tail.count)
    submit(blocks.lend(pages, of: buffer), count: buffer.bytes.count)
  }

  /// Hands `block` to the writes: its bytes start on the page where the file's last partial page
  /// begins, and hold `count` new bytes after that page's `tail`, which this puts in front of
  /// them, with zeros after them to the end of their last page; their own last partial page is
  /// the next tail.
  private func submit(_ block: WriteBlocks.Block, count: Int) {
    let alignment = WriteBlocks.alignment
    let start = length - tail.count
    tail.withUnsafeBytes { block.bytes.copyMemory(from: $0) }
    let filled = tail.count + count
    let whole = filled / alignment * alignment
    let padded = (filled + alignment - 1) / alignment * alignment
    let new = tail.count..<filled
    tail = Array(block.bytes[whole..<filled])
    UnsafeMutableRawBufferPointer(rebasing: block.bytes[filled..<padded]).initializeMemory(as: UInt8.self, repeating: 0)
    storage.submit(block, at: start, padded: padded, new: new)
    length += count
  }

  /// Once every write so far is done, makes them durable (`fsync`) and calls `then`; neither
  /// the caller nor the writes that follow wait for it.
  func commit(then: @escaping BlockFileStorage.Commit) {
    storage.commit(then)
  }

  /// Waits for every write, cuts the file to its length, makes it durable and closes it.
  ///
  /// - Returns: the SHA-256 of the whole file.
  func finish() throws(PipelineError) -> SHA256.Digest {
    storage.drain()
    defer { try? storage.descriptor.close() }
    try checkFailure()
    let descriptor = storage.descriptor
    do {
      if try descriptor.seek(offset: 0, from: .end) != length {
        try descriptor.resize(to: Int64(length))
      }
    } catch {
      throw .systemCall("ftruncate", error as? Errno ?? .ioError, path: path)
    }
    do throws(Errno) {
      try descriptor.sync()
    } catch {
      throw .systemCall("fsync", error, path: path)
    }
    return storage.sha256
  }

  /// Waits for the writes in flight and closes the file, when a run stops early.
  func close() {
    storage.drain()
    try? storage.descriptor.close()
  }

  private func checkFailure() throws(PipelineError) {
    if let failure = storage.failure { throw failure }
  }
}
