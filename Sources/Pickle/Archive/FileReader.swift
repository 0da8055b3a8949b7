import Foundation
import SafeTensors
import SystemPackage

/// An open regular file read by absolute byte range (`pread`), never whole; or, for tests, bytes
/// in memory read the same way.
final class FileReader: Sendable {
  private enum Source {
    case descriptor(FileDescriptor)
    case memory([UInt8])
  }

  let path: String
  let size: Int
  private let source: Source

  /// Opens `path` read-only without blocking (a FIFO never hangs the call).
  ///
  /// - Throws: `io` when it cannot be opened or is not a regular file.
  init(path: String) throws(PickleError) {
    self.path = path
    let descriptor: FileDescriptor
    do {
      descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
    } catch {
      throw PickleError(.io, "cannot open: \(error)", file: path)
    }
    var status = stat()
    guard fstat(descriptor.rawValue, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
      try? descriptor.close()
      throw PickleError(.io, "not a regular file", file: path)
    }
    self.source = .descriptor(descriptor)
    self.size = Int(status.st_size)
  }

  /// Reads `bytes` as if they were the file at `path`.
  init(bytes: [UInt8], path: String) {
    self.path = path
    self.size = bytes.count
    self.source = .memory(bytes)
  }

  deinit {
    if case .descriptor(let descriptor) = source { try? descriptor.close() }
  }

  /// The bytes `range` of the file.
  ///
  /// - Throws: `io` when the range is outside the file or the read fails. Wraps `pread(2)`.
  func bytes(_ range: Range<Int>) throws(PickleError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: range.count)
    try bytes.withUnsafeMutableBytes { buffer in
      Result { () throws(PickleError) in try read(at: range.lowerBound, into: buffer) }
    }.get()
    return bytes
  }

  /// Fills `buffer` from file offset `offset`.
  ///
  /// - Throws: `io` when the file ends first or a read fails. Wraps `pread(2)`.
  func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(PickleError) {
    guard offset >= 0, offset <= size, buffer.count <= size - offset else {
      throw PickleError(
        .io, "bytes \(offset)..<\(offset + buffer.count) are outside the file's \(size)", file: path, offset: offset)
    }
    let descriptor: FileDescriptor
    switch source {
    case .memory(let bytes):
      bytes.withUnsafeBytes {
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + buffer.count]))
      }
      return
    case .descriptor(let open): descriptor = open
    }
    do {
      try descriptor.readAll(fromAbsoluteOffset: Int64(offset), into: buffer)
    } catch {
      switch error {
      case .system(let errno):
        throw PickleError(.io, "read of \(buffer.count) bytes failed: \(errno)", file: path, offset: offset)
      case .endOfFile(let read):
        throw PickleError(.io, "file ended at byte \(offset + read); it was changed while open", file: path)
      }
    }
  }
}
