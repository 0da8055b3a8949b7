import CPlatform
import Crypto
import Dispatch
import SafeTensors
import Synchronization
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a ``BlockFile`` shares with the threads that write it: the open file, its
/// ``BlockFileStateMachine`` behind a lock, and its SHA-256. It performs the machine's actions,
/// running the writes, hashes and `fsync`s on a ``BlockingIOExecutor``.
final class BlockFileStorage: Sendable {
  /// What a commit runs once the bytes before it are durable (the journal line).
  typealias Commit = @Sendable () throws(PipelineError) -> Void
  /// How a block is written: `writeAll(toAbsoluteOffset:_:)` (tests make it refuse a direct write).
  typealias WriteCall = @Sendable (FileDescriptor, UnsafeRawBufferPointer, Int64) throws(Errno) -> Void
  private typealias StateMachine = BlockFileStateMachine<WriteBlocks.Block, Commit>

  let path: String
  let descriptor: FileDescriptor
  private let blocks: WriteBlocks
  private let executor: BlockingIOExecutor
  private let writeCall: WriteCall
  private let state: Mutex<StateMachine>
  /// Updated by one hash at a time, in order (the state machine's rule).
  private let digest: Mutex<SHA256>
  private let drained = DispatchSemaphore(value: 0)

  /// Takes over `descriptor`, whose first bytes `hashed` has taken; tries direct I/O when
  /// `directIO` is set.
  init(
    path: String, descriptor: FileDescriptor, hashed: sending SHA256, directIO: Bool, blocks: WriteBlocks,
    executor: BlockingIOExecutor, writeCall: @escaping WriteCall
  ) {
    self.path = path
    self.descriptor = descriptor
    self.blocks = blocks
    self.executor = executor
    self.writeCall = writeCall
    state = Mutex(StateMachine(direct: directIO && Self.setDirectIO(descriptor, true)))
    digest = Mutex(hashed)
  }

  /// Writes with `pwrite(2)`, looping over short writes.
  static let pwrite: WriteCall = { descriptor, bytes, offset throws(Errno) in
    do {
      try descriptor.writeAll(toAbsoluteOffset: offset, bytes)
    } catch {
      // swift-system's `writeAll` throws nothing but `Errno`.
      throw error as? Errno ?? .ioError
    }
  }

  /// Whether blocks are written around the page cache.
  var usesDirectIO: Bool { state.withLock { $0.direct } }

  /// The first failure of a write or a commit.
  var failure: PipelineError? { state.withLock { $0.failure } }

  /// The SHA-256 of every byte hashed; call it after ``drain()``.
  var sha256: SHA256.Digest { digest.withLock { $0.finalize() } }

  /// Hands a filled block over (``BlockFileStateMachine/submit(_:at:padded:new:)``).
  func submit(_ block: WriteBlocks.Block, at start: Int, padded: Int, new: Range<Int>) {
    perform(state.withLock { $0.submit(block, at: start, padded: padded, new: new) })
  }

  /// Makes every block submitted so far durable, then runs `commit`, while later writes go on.
  func commit(_ commit: @escaping Commit) {
    perform(state.withLock { $0.commit(commit) })
  }

  /// Blocks the calling thread until every write, hash and commit handed over has ended.
  func drain() {
    if !state.withLock({ $0.drain() }) { drained.wait() }
  }

  private func perform(_ actions: [StateMachine.Action]) {
    for action in actions {
      switch action {
      case .write(let write):
        executor.enqueue { [self] in
          var failure: PipelineError?
          do throws(Errno) {
            try writeCall(
              descriptor, UnsafeRawBufferPointer(rebasing: write.block.bytes[write.range]), Int64(write.offset))
          } catch {
            failure = .systemCall("pwrite", error, path: path)
          }
          perform(state.withLock { $0.writeFinished(write.id, failure: failure) })
        }
      case .hash(let id, let block, let range):
        executor.enqueue { [self] in
          digest.withLock { $0.update(bufferPointer: UnsafeRawBufferPointer(rebasing: block.bytes[range])) }
          perform(state.withLock { $0.hashFinished(id) })
        }
      case .sync(let commit):
        executor.enqueue { [self] in
          var failure: PipelineError?
          do throws(PipelineError) {
            do throws(Errno) {
              try descriptor.sync()
            } catch {
              throw .systemCall("fsync", error, path: path)
            }
            try commit()
          } catch {
            failure = error
          }
          perform(state.withLock { $0.syncFinished(failure: failure) })
        }
      case .release(let block):
        blocks.give(block)
      case .disableDirectIO:
        _ = Self.setDirectIO(descriptor, false)
      case .resumeDrain:
        drained.signal()
      }
    }
  }

  /// Turns direct I/O (`O_DIRECT`) on or off for `descriptor`; returns whether it is on.
  ///
  /// The corresponding C function is `fcntl` (`F_SETFL`).
  private static func setDirectIO(_ descriptor: FileDescriptor, _ on: Bool) -> Bool {
    let flag = safeshard_direct_io_flag()
    let flags = fcntl(descriptor.rawValue, F_GETFL)
    guard flag != 0, flags >= 0 else { return false }
    return fcntl(descriptor.rawValue, F_SETFL, on ? flags | flag : flags & ~flag) == 0 && on
  }
}
