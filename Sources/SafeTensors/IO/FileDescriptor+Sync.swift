import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

extension FileDescriptor {
  /// Flushes the file's data and metadata to the storage device, retrying when interrupted.
  ///
  /// The corresponding C function is `fsync(2)`.
  package func sync() throws(Errno) {
    while fsync(rawValue) != 0 {
      let code = errno
      if code != EINTR { throw Errno(rawValue: code) }
    }
  }
}
