import CPlatform
import Dispatch
import Synchronization

/// Page-aligned memory blocks through which the shard writers of a run hand their bytes to the
/// disk: a fixed number, allocated once, held with the budget reservation of their bytes until
/// the run ends, taken by a writer to fill and given back when their write and hash are done. The blocks are written
/// on the threads of a ``BlockingIOExecutor``, several at once.
///
/// A piece's own pages, written where they are (``lend(_:of:)``), take one of the ``count``
/// slots as a block of memory does: whichever kind, at most ``count`` blocks are in flight, and
/// the writer waits for a write and hash to end before it hands over another. Without that
/// bound, pieces queued for the one hash chain of their shard would each keep their buffer, and
/// the workers would map fresh pages for their next ones until the budget stopped them.
final class WriteBlocks: Sendable {
  /// The alignment of every block's size and of every file offset written: the page, which
  /// direct I/O accepts wherever the file system takes it at all.
  static let alignment = 4096
  /// The alignment of the address of every block of at least this size: a transparent huge page
  /// (asked for), so that direct I/O pins a few huge pages per write instead of thousands of small
  /// ones.
  static let hugePage = 2 << 20
  /// Blocks in flight per run: one being filled while the others are written, several at once (a
  /// virtual disk here wrote 2 GiB in 7.6 s one 8 MiB write at a time, in 4.1 s three at a time).
  static let count = 4

  /// A block's memory; whoever took it alone touches it until it is given back. A block can
  /// also be the pages of a piece's buffer (`owner`), written where they are: it belongs to no
  /// pool, and giving it back lets go of the buffer.
  struct Block: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    var owner: PieceBuffer? = nil
  }

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
      (0..<Self.count).map { _ in
        let bytes = UnsafeMutableRawBufferPointer.allocate(
          byteCount: size, alignment: size >= Self.hugePage ? Self.hugePage : Self.alignment)
        safeshard_advise_huge_pages(bytes.baseAddress!, size)
        return Block(bytes: bytes)
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

  /// A free block; blocks the calling thread until a write gives one back when there is none.
  func take() -> Block {
    available.wait()
    return free.withLock { $0.removeLast() }
  }

  /// `pages`, which hold the bytes of `owner`, as a block to write where they are; blocks the
  /// calling thread until a write gives a slot back when every one is in flight.
  func lend(_ pages: UnsafeMutableRawBufferPointer, of owner: PieceBuffer) -> Block {
    available.wait()
    return Block(bytes: pages, owner: owner)
  }

  /// Gives back a block taken with ``take()`` or ``lend(_:of:)``, whose pages then let go of
  /// their buffer.
  func give(_ block: Block) {
    if block.owner == nil { free.withLock { $0.append(block) } }
    available.signal()
  }
}
