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
/// computed from them. The descriptor the bytes come from stays open while they are mapped (the
/// ``SafeTensorsFile`` they come from outlives them).
public final class MappedTensorBytes: @unchecked Sendable {
  /// The tensor's bytes.
  public let bytes: UnsafeRawBufferPointer
  private let mapping: UnsafeMutableRawPointer
  private let length: Int
  private let slot: Int32
  private let descriptor: FileDescriptor
  /// The file offset where the bytes end.
  private let end: Int
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

  /// Maps and loads `count` bytes at file offset `offset` of `descriptor`; `nil` when every guard
  /// slot is taken or the file cannot be mapped or loaded (its file system refuses `mmap`, or it
  /// ends before the bytes): a `pread` then reads the bytes, or says why it cannot.
  ///
  /// The corresponding C functions are `mmap` and `madvise` (`MADV_POPULATE_READ`).
  init?(_ descriptor: FileDescriptor, offset: Int, count: Int, path: String, tensor: String) {
    let start = offset / Self.pageSize * Self.pageSize
    let length = max(offset + count - start, 1)
    guard let mapping = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor.rawValue, off_t(start)),
      mapping != MAP_FAILED
    else { return nil }
    let slot = safeshard_guard_begin(mapping, length)
    guard slot >= 0 else {
      munmap(mapping, length)
      return nil
    }
    self.mapping = mapping
    self.length = length
    self.slot = slot
    self.descriptor = descriptor
    self.end = offset + count
    self.path = path
    self.tensor = tensor
    bytes = UnsafeRawBufferPointer(start: mapping + (offset - start), count: count)
    // `deinit` ends the guard and unmaps.
    guard safeshard_populate_read(mapping, length) == 0 else { return nil }
  }

  deinit {
    safeshard_guard_end(slot)
    munmap(mapping, length)
  }

  /// The memory the mapping takes: its whole pages.
  public var mappedCount: Int { (length + Self.pageSize - 1) / Self.pageSize * Self.pageSize }

  /// Checks that every byte was read from the file: that no page went missing (read as zeros)
  /// and that the file still reaches the bytes' end, as a file cut inside a page shows the rest of
  /// that page as zeros without a fault.
  ///
  /// - Throws: ``SafeTensorsError`` (`io`) naming the file and tensor when the file shrank, or a
  ///   page could not be read, while the bytes were mapped.
  ///
  /// The corresponding C function is `fstat`.
  public func check() throws(SafeTensorsError) {
    var status = stat()
    let size = fstat(descriptor.rawValue, &status) == 0 ? Int(status.st_size) : -1
    if size >= 0 && size < end {
      throw SafeTensorsError(
        .io, "file shrank to \(size) bytes while bytes up to \(end) were read; it was changed while open",
        file: path, tensor: tensor)
    }
    guard size < 0 || safeshard_guard_faulted(slot) else { return }
    throw SafeTensorsError(
      .io, "a page of the bytes up to \(end) could not be read from the file while it was mapped", file: path,
      tensor: tensor)
  }
}
