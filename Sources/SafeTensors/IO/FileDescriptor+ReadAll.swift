import SystemPackage

/// Why ``SystemPackage/FileDescriptor/readAll(fromAbsoluteOffset:into:)`` did not fill its buffer.
package enum ReadAllError: Error, Sendable, Equatable {
  /// A read failed with this system error.
  case system(Errno)
  /// The file ended first: `read` bytes were read, the rest of the buffer holds nothing new.
  case endOfFile(read: Int)
}

extension FileDescriptor {
  /// Reads bytes from the given offset until the buffer is full.
  ///
  /// - Parameters:
  ///   - offset: The file offset where reading begins.
  ///   - buffer: The region of memory to fill.
  /// - Throws: ``ReadAllError/system(_:)`` when a read fails, ``ReadAllError/endOfFile(read:)``
  ///   when the file ends before `buffer` is full.
  ///
  /// This method either fills the whole of `buffer`, or throws an error if only part of it could be
  /// read. Short reads go on where they stopped and interrupted reads are retried. Like
  /// `writeAll(toAbsoluteOffset:_:)`, it preserves the file descriptor's offset.
  ///
  /// The corresponding C function is `pread`.
  package func readAll(fromAbsoluteOffset offset: Int64, into buffer: UnsafeMutableRawBufferPointer)
    throws(ReadAllError)
  {
    var done = 0
    while done < buffer.count {
      let count: Int
      do {
        count = try read(
          fromAbsoluteOffset: offset + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]),
          retryOnInterrupt: true)
      } catch {
        // swift-system's `read` throws nothing but `Errno`.
        throw .system(error as? Errno ?? .ioError)
      }
      guard count > 0 else { throw .endOfFile(read: done) }
      done += count
    }
  }
}
