import CPlatform
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Bytes of a stored tensor mapped read-only from its file (``SafeTensorsFile/map(_:at:count:)``),
/// loaded when mapped, and unmapped when this is freed: a kernel reads them in place, without the
/// copy a `pread` into a buffer makes.
///
/// A mapped file that shrinks under a read would end the process with `SIGBUS`. While this
/// exists, a handler (`safeshard_guard_install`) reads a missing page as zeros instead, and
/// ``check()`` reports it: whoever uses the bytes calls ``check()`` before trusting what it
/// computed from them.
public final class MappedTensorBytes: @unchecked Sendable {
  /// The tensor's bytes.
  public let bytes: UnsafeRawBufferPointer
  private let mapping: UnsafeMutableRawPointer
  private let length: Int
  private let slot: Int32
  private let path: String
  private let tensor: String

  /// The memory a mapping of `count` bytes can take: its whole pages, and one more where the bytes
  /// do not start on a page.
  public static func footprint(_ count: Int) -> Int {
    (count + pageSize - 1) / pageSize * pageSize + pageSize
  }

  /// Whether this system can map, guard and populate: the handler is installed and the kernel
  /// takes `MADV_POPULATE_READ` (Linux 5.14 and later).
  public static let isSupported: Bool = {
    guard safeshard_guard_install() == 0 else { return false }
    let page = mmap(nil, pageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let page, page != MAP_FAILED else { return false }
    defer { munmap(page, pageSize) }
    return safeshard_populate_read(page, pageSize) == 0
  }()

  private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

  /// Maps `count` bytes at file offset `offset` of `descriptor`, or returns `nil` when every guard
  /// slot is taken.
  ///
  /// - Throws: ``SafeTensorsError`` (`io`) when `mmap` fails or the file ends before the bytes.
  ///
  /// The corresponding C functions are `mmap` and `madvise` (`MADV_POPULATE_READ`).
  init?(
    _ descriptor: FileDescriptor, offset: Int, count: Int, path: String, tensor: String
  ) throws(SafeTensorsError) {
    let start = offset / Self.pageSize * Self.pageSize
    let length = max(offset + count - start, 1)
    guard let mapping = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor.rawValue, off_t(start)),
      mapping != MAP_FAILED
    else {
      throw SafeTensorsError(
        .io, "mapping \(count) bytes at offset \(offset) failed: \(Errno(rawValue: errno))", file: path,
        tensor: tensor)
    }
    let slot = safeshard_guard_begin(mapping, length)
    guard slot >= 0 else {
      munmap(mapping, length)
      return nil
    }
    self.mapping = mapping
    self.length = length
    self.slot = slot
    self.path = path
    self.tensor = tensor
    bytes = UnsafeRawBufferPointer(start: mapping + (offset - start), count: count)
    let status = safeshard_populate_read(mapping, length)
    guard status == 0 else {
      let ended = status == EFAULT
      throw SafeTensorsError(
        .io,
        ended
          ? "file ended before byte \(offset + count); it was changed while open"
          : "loading \(count) mapped bytes at offset \(offset) failed: \(Errno(rawValue: status))",
        file: path, tensor: tensor)
    }
  }

  deinit {
    _ = safeshard_guard_end(slot)
    munmap(mapping, length)
  }

  /// Checks that every page was read from the file.
  ///
  /// - Throws: ``SafeTensorsError`` (`io`) when the file shrank while the bytes were mapped, so that
  ///   some were read as zeros.
  public func check() throws(SafeTensorsError) {
    guard safeshard_guard_faulted(slot) else { return }
    throw SafeTensorsError(
      .io, "file shrank while its bytes were read; it was changed while open", file: path, tensor: tensor)
  }
}
