import Foundation
import SystemPackage

/// An open safetensors file with a validated header, whose tensor bytes are read by range; or a
/// file of another format presented as one (``init(presenting:header:source:)``).
///
/// Opening reads the 8-byte length and the header only, and checks every rule of
/// ``SafeTensorsHeader`` plus the file length; tensor data is never loaded whole. The file
/// descriptor stays open until the value is released; reads are `pread`s and may run from any
/// number of tasks at once.
public final class SafeTensorsFile: Sendable {
  /// The path the file was opened at.
  public let path: String
  /// The validated header.
  public let header: SafeTensorsHeader
  /// The file offset of the first data byte: 8 plus the header length (0 for a presented file).
  public let dataStart: Int
  private let storage: Storage

  private enum Storage: Sendable {
    case descriptor(FileDescriptor)
    case presented(any TensorByteSource)
  }

  /// The file at `path`, of another format, presented as safetensors: `header` lists its tensors
  /// as safetensors would store them (offsets into a data section that does not exist as such),
  /// and `source` reads their bytes.
  public init(presenting path: String, header: SafeTensorsHeader, source: any TensorByteSource) {
    self.path = path
    self.header = header
    self.dataStart = 0
    self.storage = .presented(source)
  }

  /// Opens and validates the file at `path`.
  ///
  /// - Throws: ``SafeTensorsError`` naming `path`: `io` when it cannot be opened or read,
  ///   `notRegularFile` when it is a FIFO, device, socket or directory (opened without blocking,
  ///   so a FIFO never hangs the call), and the header rules' codes when it is not a valid
  ///   safetensors file.
  public convenience init(path: String) throws(SafeTensorsError) {
    try self.init(path: path, metadataCache: nil)
  }

  /// ``init(path:)``, decoding the header's `__metadata__` through `metadataCache` (the shards of
  /// a checkpoint usually carry the same).
  init(path: String, metadataCache: HeaderScan.MetadataCache?) throws(SafeTensorsError) {
    self.path = path
    let descriptor: FileDescriptor
    do {
      descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
    } catch {
      throw SafeTensorsError(.io, "cannot open: \(error)", file: path)
    }
    do {
      try Self.checkRegular(descriptor, path: path)
      let fileSize = try Self.size(of: descriptor, path: path)
      var prefix: UInt64 = 0
      if fileSize >= 8 {
        try withUnsafeMutableBytes(of: &prefix) { buffer in
          Result { () throws(SafeTensorsError) in try Self.readExactly(descriptor, into: buffer, at: 0, path: path) }
        }.get()
      }
      let length = try SafeTensorsHeader.headerLength(prefix: UInt64(littleEndian: prefix), fileSize: fileSize)
      let json = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 8)
      defer { json.deallocate() }
      try Self.readExactly(descriptor, into: json, at: 8, path: path)
      let header = try SafeTensorsHeader.decode(json: UnsafeRawBufferPointer(json), metadataCache: metadataCache)
      try header.checkDataLength(fileSize - 8 - length)
      self.header = header
      self.dataStart = 8 + length
      self.storage = .descriptor(descriptor)
    } catch {
      try? descriptor.close()
      throw error.inFile(path)
    }
  }

  deinit {
    if case .descriptor(let descriptor) = storage { try? descriptor.close() }
  }

  /// The entry named `name`.
  ///
  /// - Throws: `tensorNotFound` when the file has no such tensor.
  public func tensor(named name: String) throws(SafeTensorsError) -> TensorInfo {
    guard let tensor = header.tensor(named: name) else {
      throw SafeTensorsError(.tensorNotFound, "no such tensor in the file", file: path, tensor: name)
    }
    return tensor
  }

  /// How the tensor named `name` is read, when the file is presented as safetensors and that is
  /// more than a copy of its bytes (``TensorByteSource/readingNote(of:)``).
  public func readingNote(of name: String) -> String? {
    guard case .presented(let source) = storage else { return nil }
    return source.readingNote(of: name)
  }

  /// The scratch a read of at most `count` bytes of `tensor` needs beside its buffer
  /// (``TensorByteSource/scratchBytes(_:count:)``): 0 but for a presented file, and for a read of
  /// nothing (which reads nothing; an empty tensor's shape may divide by zero).
  public func scratchBytes(_ tensor: TensorInfo, count: Int) -> Int {
    guard case .presented(let source) = storage, count > 0 else { return 0 }
    return source.scratchBytes(tensor, count: count)
  }

  /// Reads `buffer.count` bytes of `tensor`'s data, starting `offset` bytes into it; a presented
  /// file's source works in scratch of its own, allocated for the call.
  ///
  /// - Throws: `invalidArgument` when the range is outside the tensor, `io` when the read
  ///   fails or the file has shrunk. Wraps `pread(2)`.
  public func read(_ tensor: TensorInfo, at offset: Int = 0, into buffer: UnsafeMutableRawBufferPointer)
    throws(SafeTensorsError)
  {
    let count = scratchBytes(tensor, count: buffer.count)
    guard count > 0 else {
      var none = ReadScratch(UnsafeMutableRawBufferPointer(start: nil, count: 0))
      return try read(tensor, at: offset, into: buffer, scratch: &none)
    }
    let region = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: ReadScratch.alignment)
    defer { region.deallocate() }
    var scratch = ReadScratch(region)
    try read(tensor, at: offset, into: buffer, scratch: &scratch)
  }

  /// Reads `buffer.count` bytes of `tensor`'s data, starting `offset` bytes into it; a presented
  /// file's source works in `scratch`, which must hold ``scratchBytes(_:count:)`` bytes.
  ///
  /// - Throws: `invalidArgument` when the range is outside the tensor, `io` when the read
  ///   fails or the file has shrunk. Wraps `pread(2)`.
  public func read(
    _ tensor: TensorInfo, at offset: Int = 0, into buffer: UnsafeMutableRawBufferPointer,
    scratch: inout ReadScratch
  ) throws(SafeTensorsError) {
    try checkRange(tensor, offset: offset, count: buffer.count)
    switch storage {
    case .descriptor(let descriptor):
      try Self.readExactly(descriptor, into: buffer, at: dataStart + tensor.dataOffsets.lowerBound + offset, path: path)
    case .presented(let source):
      try scratch.scoped { (scratch) throws(SafeTensorsError) in
        try source.read(tensor, at: offset, into: buffer, scratch: &scratch)
      }
    }
  }

  /// Whether ``map(_:at:count:)`` can map bytes of this file: it is read from its descriptor
  /// (not presented) on a system that can guard a mapping (``MappedTensorBytes/isSupported``).
  public var isMappable: Bool {
    guard case .descriptor = storage else { return false }
    return MappedTensorBytes.isSupported
  }

  /// Maps `count` bytes of `tensor`'s data from `offset` into it, read-only, and loads them; `nil`
  /// when the file is not ``isMappable``, no guard is free, or the bytes cannot be mapped and
  /// loaded (``MappedTensorBytes/init(_:offset:count:path:tensor:)``): then they must be read.
  ///
  /// - Throws: ``SafeTensorsError`` (`invalidArgument`) naming the file and tensor for a range
  ///   outside the tensor.
  public func map(_ tensor: TensorInfo, at offset: Int, count: Int) throws(SafeTensorsError) -> MappedTensorBytes? {
    try checkRange(tensor, offset: offset, count: count)
    guard isMappable, case .descriptor(let descriptor) = storage else { return nil }
    return MappedTensorBytes(
      descriptor, offset: dataStart + tensor.dataOffsets.lowerBound + offset, count: count, path: path,
      tensor: tensor.name)
  }

  /// Reads `tensor`'s data front to back in pieces of at most `chunkSize` bytes, handing each
  /// to `body` in order. One buffer of `chunkSize` bytes is reused for every piece.
  ///
  /// - Throws: what ``read(_:at:into:)`` throws, and whatever `body` throws, unchanged.
  public func forEachChunk(
    of tensor: TensorInfo, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    precondition(chunkSize > 0, "chunkSize must be positive")
    let buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: min(chunkSize, max(tensor.byteCount, 1)), alignment: 64)
    defer { buffer.deallocate() }
    var offset = 0
    while offset < tensor.byteCount {
      let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, tensor.byteCount - offset)])
      try read(tensor, at: offset, into: piece)
      try body(UnsafeRawBufferPointer(piece))
      offset += piece.count
    }
  }

  /// All of `tensor`'s data bytes. Meant for small tensors; use ``forEachChunk(of:chunkSize:_:)``
  /// or ``read(_:at:into:)`` for large ones.
  public func bytes(of tensor: TensorInfo) throws(SafeTensorsError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: tensor.byteCount)
    try bytes.withUnsafeMutableBytes { buffer in
      Result { () throws(SafeTensorsError) in try read(tensor, into: buffer) }
    }.get()
    return bytes
  }

  private func checkRange(_ tensor: TensorInfo, offset: Int, count: Int) throws(SafeTensorsError) {
    guard offset >= 0, count >= 0, offset <= tensor.byteCount, count <= tensor.byteCount - offset else {
      throw SafeTensorsError(
        .invalidArgument, "bytes \(offset)..<\(offset + count) are outside the tensor's \(tensor.byteCount)",
        file: path, tensor: tensor.name)
    }
  }

  /// Throws `notRegularFile` unless `descriptor` is a regular file.
  private static func checkRegular(_ descriptor: FileDescriptor, path: String) throws(SafeTensorsError) {
    var status = stat()
    guard fstat(descriptor.rawValue, &status) == 0 else {
      throw SafeTensorsError(.io, "cannot stat: \(Errno(rawValue: errno))", file: path)
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
      throw SafeTensorsError(.notRegularFile, "not a regular file (a FIFO, device, socket or directory)", file: path)
    }
  }

  private static func size(of descriptor: FileDescriptor, path: String) throws(SafeTensorsError) -> Int {
    do {
      return Int(try descriptor.seek(offset: 0, from: .end))
    } catch {
      throw SafeTensorsError(.io, "cannot find the file size: \(error)", file: path)
    }
  }

  /// Fills `buffer` from `offset`; a file that ends first is an error (it shrank after it was
  /// validated).
  private static func readExactly(
    _ descriptor: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String
  ) throws(SafeTensorsError) {
    do {
      try descriptor.readAll(fromAbsoluteOffset: Int64(offset), into: buffer)
    } catch {
      switch error {
      case .system(let errno):
        throw SafeTensorsError(.io, "read of \(buffer.count) bytes at offset \(offset) failed: \(errno)", file: path)
      case .endOfFile(let read):
        throw SafeTensorsError(.io, "file ended at byte \(offset + read); it was changed while open", file: path)
      }
    }
  }
}

/// What reads the tensors of a file presented as safetensors
/// (``SafeTensorsFile/init(presenting:header:source:)``).
public protocol TensorByteSource: Sendable {
  /// The most scratch a read of at most `count` bytes of `tensor`, from any offset, takes
  /// (``ReadScratch/bytes(_:)`` of what it takes at once).
  func scratchBytes(_ tensor: TensorInfo, count: Int) -> Int

  /// Reads `buffer.count` bytes of `tensor`'s data as safetensors stores it (C order,
  /// little-endian), starting `offset` bytes into it, working in `scratch` beside it (at least
  /// ``scratchBytes(_:count:)``); the caller has checked that the range is inside the tensor.
  ///
  /// - Throws: ``SafeTensorsError`` naming the file and tensor when the bytes cannot be read.
  func read(
    _ tensor: TensorInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer, scratch: inout ReadScratch
  ) throws(SafeTensorsError)

  /// How the tensor named `name` is read, when that is more than a copy of its bytes (e.g.
  /// "dequantized from …"), for `plan` and `inspect` to show.
  func readingNote(of name: String) -> String?
}
