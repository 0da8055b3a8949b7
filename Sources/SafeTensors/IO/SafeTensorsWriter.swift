import SystemPackage

/// Writes one safetensors file front to back: the header first, then each tensor's bytes in
/// the header's order.
///
/// The writer checks that exactly ``SafeTensorsHeader/dataLength`` bytes arrive before
/// ``finish()``; a writer abandoned early leaves a short file that every reader refuses
/// (`incompleteBuffer`).
public struct SafeTensorsWriter: ~Copyable {
  /// The path being written.
  public let path: String
  /// The header that was written.
  public let header: SafeTensorsHeader
  private let descriptor: FileDescriptor
  private var written = 0

  /// Creates (or truncates) the file at `path` and writes `header`.
  ///
  /// - Throws: `io` naming the path when the file cannot be created or written.
  public init(path: String, header: SafeTensorsHeader) throws(SafeTensorsError) {
    let descriptor: FileDescriptor
    do {
      descriptor = try FileDescriptor.open(
        FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
        permissions: [.ownerReadWrite, .groupRead, .otherRead])
    } catch {
      throw SafeTensorsError(.io, "cannot create: \(error)", file: path)
    }
    do {
      try Self.writeAll(descriptor, header.encoded(), path: path)
    } catch {
      try? descriptor.close()
      throw error
    }
    self.path = path
    self.header = header
    self.descriptor = descriptor
  }

  /// Appends the next data bytes.
  ///
  /// - Throws: `invalidArgument` when the bytes would pass the end of the data the header
  ///   describes; `io` when the write fails.
  public mutating func write(_ bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
    guard bytes.count <= header.dataLength - written else {
      throw SafeTensorsError(
        .invalidArgument, "\(bytes.count) more bytes would pass the \(header.dataLength) the header describes",
        file: path)
    }
    try Self.writeAll(descriptor, bytes, path: path)
    written += bytes.count
  }

  /// Appends the next data bytes.
  public mutating func write(_ bytes: [UInt8]) throws(SafeTensorsError) {
    try bytes.withUnsafeBytes { buffer in Result { () throws(SafeTensorsError) in try write(buffer) } }.get()
  }

  /// Checks that all data was written, then flushes it to disk (`fsync(2)`) and closes the file
  /// (when the consumed writer is destroyed).
  public consuming func finish() throws(SafeTensorsError) {
    guard written == header.dataLength else {
      throw SafeTensorsError(
        .invalidArgument, "only \(written) of \(header.dataLength) data bytes were written", file: path)
    }
    do {
      try descriptor.sync()
    } catch {
      throw SafeTensorsError(.io, "fsync failed: \(error)", file: path)
    }
  }

  deinit {
    try? descriptor.close()
  }

  /// Writes a whole file: `data` maps each tensor of `header` to its bytes.
  ///
  /// - Throws: `invalidArgument` when a tensor's bytes are missing or the wrong size.
  public static func write(path: String, header: SafeTensorsHeader, data: [String: [UInt8]]) throws(SafeTensorsError) {
    for tensor in header.tensors where data[tensor.name]?.count != tensor.byteCount {
      throw SafeTensorsError(
        .invalidArgument, "data is \(data[tensor.name]?.count ?? 0) bytes, expected \(tensor.byteCount)",
        file: path, tensor: tensor.name)
    }
    var writer = try SafeTensorsWriter(path: path, header: header)
    for tensor in header.tensors { try writer.write(data[tensor.name]!) }
    try writer.finish()
  }

  private static func writeAll(_ descriptor: FileDescriptor, _ bytes: some Sequence<UInt8>, path: String)
    throws(SafeTensorsError)
  {
    do {
      _ = try descriptor.writeAll(bytes)
    } catch {
      throw SafeTensorsError(.io, "write failed: \(error)", file: path)
    }
  }
}
