import CPlatform
import Crypto
import Dispatch
import Foundation
import SafeTensors
import Synchronization
import SystemPackage

/// Page-aligned memory blocks through which the shard writers of a run hand their bytes to the
/// disk: a fixed number, allocated once, held with the budget reservation of their bytes until
/// the run ends, taken by a writer to fill and given back when their write is done. Each block is written by a
/// serial queue of its own (so by a thread of its own: writes block on the disk).
final class WriteBlocks: Sendable {
  /// The alignment of every block's address and size and of every file offset written: the
  /// page, which direct I/O accepts wherever the file system takes it at all.
  static let alignment = 4096
  /// Blocks per run: one being filled while the others are written, several at once (a
  /// virtual disk here wrote 2 GiB in 7.6 s one 8 MiB write at a time, in 4.1 s three at a time).
  static let count = 4

  let size: Int
  private let free: Mutex<[Block]>
  private let available = DispatchSemaphore(value: WriteBlocks.count)
  private let reservation: MemoryReservation

  /// ``count`` blocks of `size` bytes (a positive multiple of ``alignment``), held by
  /// `reservation` (of ``count`` × `size` bytes).
  init(size: Int, reservation: consuming MemoryReservation) {
    precondition(size > 0 && size % Self.alignment == 0 && reservation.bytes == Self.count * size)
    self.size = size
    reservation.budget.gauge.allocated(Self.count * size)
    self.reservation = reservation
    free = Mutex(
      (0..<Self.count).map { index in
        Block(
          bytes: .allocate(byteCount: size, alignment: Self.alignment),
          queue: DispatchQueue(label: "safeshard.disk.\(index)"))
      })
  }

  deinit {
    free.withLock { blocks in
      for block in blocks { block.bytes.deallocate() }
    }
    reservation.budget.gauge.freed(Self.count * size)
  }

  /// The block size for a memory budget: a 32nd of it, in whole pages, at most 8 MiB.
  static func size(memory: Int) -> Int {
    min(8 << 20, max(alignment, memory / 32 / alignment * alignment))
  }

  /// A free block; waits for a write to finish when there is none.
  fileprivate func take() -> Block {
    available.wait()
    return free.withLock { $0.removeLast() }
  }

  fileprivate func give(_ block: Block) {
    free.withLock { $0.append(block) }
    available.signal()
  }
}

/// A block and the queue that writes it; whoever took it alone touches it until it is given back.
private struct Block: @unchecked Sendable {
  let bytes: UnsafeMutableRawBufferPointer
  let queue: DispatchQueue
}

/// A file written front to back through ``WriteBlocks``, and its SHA-256: the owner only copies
/// bytes into blocks, while the blocks' queues write them and a queue of the file's hashes them.
///
/// Appended bytes are copied into blocks. With direct I/O (`O_DIRECT`, where the file system
/// takes it) the output goes to the device without filling the page cache, and the final `fsync`
/// has little left to do: each block is written whole at a page-aligned offset, several at once,
/// in any order, except that a block starting in the page where the one before it ended waits for
/// that one. A block that ends inside a page is written padded to the page; the bytes of that page
/// are kept and written again at the start of the next block, and ``finish()`` cuts the file to
/// its length. Where direct I/O is refused, only each block's new bytes are written, one block
/// after the other: the file only ever grows at its end, as append-only file systems require.
///
/// Blocks are hashed one after the other, beside the writes, and taken again once both are done.
/// Errors of the writes and commits are reported by the next call.
final class BlockFile {
  let path: String
  /// Bytes appended.
  private(set) var length: Int
  private let descriptor: FileDescriptor
  private let blocks: WriteBlocks
  /// Makes written bytes durable, beside the writes that follow them.
  private let syncQueue = DispatchQueue(label: "safeshard.disk.sync")
  /// Hashes the appended bytes, in order.
  private let hashQueue = DispatchQueue(label: "safeshard.disk.hash")
  private let hasher: Hasher
  private let disk: DiskState
  /// The appended bytes of the last, partial page (`length % alignment` of them).
  private var tail: [UInt8]
  /// The last write handed out (left when done) and the file offset where it ends.
  private var lastWrite: (done: DispatchGroup, end: Int)?
  /// The writes handed out since the last commit (the commits wait for those before them).
  private var uncommitted: [DispatchGroup] = []

  /// Creates the file at `path`, or empties it.
  ///
  /// - Parameter directIO: whether to try direct I/O (tests turn it off to check the other way).
  convenience init(creating path: String, blocks: WriteBlocks, directIO: Bool = true) throws(PipelineError) {
    try self.init(
      path: path, length: 0, hashed: SHA256(), options: [.create, .truncate], blocks: blocks, directIO: directIO)
  }

  /// Opens the file at `path` to append after its first `length` bytes, cutting off the rest;
  /// `hashed` has taken those bytes.
  convenience init(continuing path: String, length: Int, hashed: SHA256, blocks: WriteBlocks)
    throws(PipelineError)
  {
    try self.init(path: path, length: length, hashed: hashed, options: [], blocks: blocks, directIO: true)
  }

  private init(
    path: String, length: Int, hashed: SHA256, options: FileDescriptor.OpenOptions, blocks: WriteBlocks,
    directIO: Bool
  ) throws(PipelineError) {
    let alignment = WriteBlocks.alignment
    let descriptor: FileDescriptor
    let tailCount = length % alignment
    var tail = [UInt8](repeating: 0, count: tailCount)
    do {
      descriptor = try FileDescriptor.open(
        FilePath(path), .readWrite, options: options.union(.closeOnExec),
        permissions: [.ownerReadWrite, .groupRead, .otherRead])
      do {
        try descriptor.resize(to: Int64(length))
        let read = try tail.withUnsafeMutableBytes {
          try descriptor.read(fromAbsoluteOffset: Int64(length - tailCount), into: $0)
        }
        guard read == tailCount else { throw Errno.ioError }
      } catch {
        try? descriptor.close()
        throw error
      }
    } catch {
      throw PipelineError(.io, "opening \(path) for writing: \(error)")
    }
    self.path = path
    self.length = length
    self.descriptor = descriptor
    self.blocks = blocks
    self.tail = tail
    hasher = Hasher(hashed)
    disk = DiskState(direct: directIO && Self.setDirectIO(descriptor, true))
  }

  /// Appends `bytes`.
  func append(_ bytes: UnsafeRawBufferPointer) throws(PipelineError) {
    try checkFailure()
    let alignment = WriteBlocks.alignment
    var taken = 0
    while taken < bytes.count {
      let block = blocks.take()
      let start = length - tail.count
      tail.withUnsafeBytes { block.bytes.copyMemory(from: $0) }
      let count = min(block.bytes.count - tail.count, bytes.count - taken)
      let slice = UnsafeRawBufferPointer(rebasing: bytes[taken..<taken + count])
      UnsafeMutableRawBufferPointer(rebasing: block.bytes[tail.count...]).copyMemory(from: slice)
      let filled = tail.count + count
      let whole = filled / alignment * alignment
      let padded = (filled + alignment - 1) / alignment * alignment
      tail = Array(block.bytes[whole..<filled])
      UnsafeMutableRawBufferPointer(rebasing: block.bytes[filled..<padded]).initializeMemory(
        as: UInt8.self, repeating: 0)
      submit(block, at: start, padded: padded, new: filled - count..<filled)
      taken += count
      length += count
    }
  }

  /// Once every write so far is done, makes them durable (`fsync`) and calls `then`; neither
  /// the caller nor the writes that follow wait for it.
  func commit(then: @escaping @Sendable () throws(PipelineError) -> Void) {
    let writes = uncommitted
    uncommitted = []
    syncQueue.async { [descriptor, disk, path] in
      for write in writes { write.wait() }
      guard disk.failure == nil else { return }
      do {
        try descriptor.sync()
      } catch {
        disk.fail("flushing \(path): \(error)")
        return
      }
      do {
        try then()
      } catch {
        disk.fail("\(error)")
      }
    }
  }

  /// Waits for every write, cuts the file to its length, makes it durable and closes it.
  ///
  /// - Returns: the SHA-256 of the whole file.
  func finish() throws(PipelineError) -> SHA256.Digest {
    drain()
    defer { try? descriptor.close() }
    try checkFailure()
    do {
      if try descriptor.seek(offset: 0, from: .end) != length {
        try descriptor.resize(to: Int64(length))
      }
      try descriptor.sync()
    } catch {
      throw PipelineError(.io, "flushing \(path): \(error)")
    }
    return hasher.finalize()
  }

  /// Waits for the writes in flight and closes the file, when a run stops early.
  func close() {
    drain()
    try? descriptor.close()
  }

  /// Waits for every write, hash and commit handed out.
  private func drain() {
    for write in uncommitted { write.wait() }
    hashQueue.sync {}
    syncQueue.sync {}
  }

  private func checkFailure() throws(PipelineError) {
    if let failure = disk.failure { throw PipelineError(.io, failure) }
  }

  /// Hands a block that goes at file offset `start` to its queue and to the hash queue; it is
  /// given back once both are done. Its `new` bytes are hashed; with direct I/O its first
  /// `padded` bytes are written, otherwise its new bytes only, after the block before it.
  private func submit(_ block: Block, at start: Int, padded: Int, new: Range<Int>) {
    let done = DispatchGroup()
    done.enter()
    let direct = disk.direct
    let (range, offset) = direct ? (0..<padded, start) : (new, start + new.lowerBound)
    let before = lastWrite.flatMap { !direct || $0.end > offset ? $0.done : nil }
    lastWrite = (done, offset + range.count)
    uncommitted.append(done)
    let used = DispatchGroup()
    used.enter()
    hashQueue.async { [hasher] in
      hasher.update(UnsafeRawBufferPointer(rebasing: block.bytes[new]))
      used.leave()
    }
    used.enter()
    block.queue.async { [descriptor, disk, path] in
      defer {
        done.leave()
        used.leave()
      }
      before?.wait()
      guard disk.failure == nil else { return }
      let bytes = UnsafeRawBufferPointer(rebasing: block.bytes[range])
      let write = { Result { try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes) } }
      var result = write()
      if case .failure(Errno.invalidArgument) = result, disk.direct {
        // The file system took the flag but refuses this write: go on through the page cache.
        disk.direct = Self.setDirectIO(descriptor, false)
        result = write()
      }
      if case .failure(let error) = result { disk.fail("writing \(path): \(error)") }
    }
    used.notify(queue: block.queue) { [blocks] in blocks.give(block) }
  }

  /// Turns direct I/O on or off for `descriptor`; returns whether it is on.
  private static func setDirectIO(_ descriptor: FileDescriptor, _ on: Bool) -> Bool {
    let flag = safeshard_direct_io_flag()
    let flags = fcntl(descriptor.rawValue, F_GETFL)
    guard flag != 0, flags >= 0 else { return false }
    return fcntl(descriptor.rawValue, F_SETFL, on ? flags | flag : flags & ~flag) == 0 && on
  }
}

/// What the queues of a ``BlockFile`` share with its owner.
private final class DiskState: Sendable {
  private let state: Mutex<(direct: Bool, failure: String?)>

  init(direct: Bool) {
    state = Mutex((direct, nil))
  }

  /// Whether writes go around the page cache.
  var direct: Bool {
    get { state.withLock { $0.direct } }
    set { state.withLock { $0.direct = newValue } }
  }

  /// The first failure, which stops every later write.
  var failure: String? { state.withLock { $0.failure } }

  func fail(_ message: String) {
    state.withLock { if $0.failure == nil { $0.failure = message } }
  }
}

/// The SHA-256 of a ``BlockFile``, updated on its hash queue only.
private final class Hasher: @unchecked Sendable {
  private var state: SHA256

  init(_ state: SHA256) {
    self.state = state
  }

  func update(_ bytes: UnsafeRawBufferPointer) {
    state.update(bufferPointer: bytes)
  }

  func finalize() -> SHA256.Digest {
    state.finalize()
  }
}
