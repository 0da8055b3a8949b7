import Crypto
import Foundation
import SafeTensors
import SystemPackage

extension OutputDirectory {
  /// Copies the input's other files (``InputFiles``) into the output as real files with the
  /// same bytes, sub-folders included, and writes `config.json` changed by `configChange` when
  /// given. Each file is streamed through its links into a temporary file, fsynced and
  /// renamed into place; the folders are fsynced after.
  ///
  /// `isCancelled` is asked between pieces of at most 8 MiB, so that a signal stops the copy of
  /// even a huge file soon.
  ///
  /// - Returns: each written file's path relative to the output, with its SHA-256.
  /// - Throws: ``PipelineError``: `invalidInput` when a file is no longer a regular file or
  ///   `config.json` is not a JSON object, `io` when a system call fails, `cancelled` once
  ///   `isCancelled` says so.
  func copyInputFiles(
    from input: String, configChange: ConversionPlan.ConfigChange?, isCancelled: () -> Bool
  ) throws(PipelineError) -> [String: String] {
    var digests: [String: String] = [:]
    var folders = Set<String>()
    for relative in InputFiles(scanning: input, excluding: path).files {
      let source = join(input, relative)
      let target = join(path, relative)
      let folder = (target as NSString).deletingLastPathComponent
      if folders.insert(folder).inserted {
        do {
          try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
          throw PipelineError(.io, "creating \(folder): \(error.localizedDescription)", path: folder, cause: error)
        }
      }
      if relative == "config.json", let configChange {
        let bytes = Array(try Self.configText(try Self.contents(of: source), change: configChange, path: source).utf8)
        try writeAtomically(bytes, to: target)
        digests[relative] = ChecksumList.hex(SHA256.hash(data: bytes))
      } else {
        digests[relative] = try copyFile(source, to: target, isCancelled: isCancelled)
      }
    }
    for folder in folders.sorted() where folder != path { try Self.syncDirectory(folder) }
    return digests
  }

  /// Streams the regular file at `source` (links followed) into a temporary file, fsyncs it and
  /// renames it to `target`. Returns its SHA-256.
  private func copyFile(_ source: String, to target: String, isCancelled: () -> Bool) throws(PipelineError) -> String {
    let temporary = temporaryPath()
    let output: FileDescriptor
    do {
      output = try FileDescriptor.open(
        FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec],
        permissions: [.ownerReadWrite, .groupRead, .otherRead])
    } catch {
      throw PipelineError.systemCall("open", (error as? Errno) ?? .ioError, path: temporary)
    }
    defer { try? output.close() }
    var hasher = SHA256()
    try Self.forEachChunk(ofFile: source) { piece throws(PipelineError) in
      if isCancelled() { throw PipelineError(cancellation: CancellationError()) }
      hasher.update(bufferPointer: piece)
      do {
        _ = try output.writeAll(piece)
      } catch {
        throw PipelineError.systemCall("write", (error as? Errno) ?? .ioError, path: temporary)
      }
    }
    do {
      try output.sync()
    } catch {
      throw PipelineError.systemCall("fsync", error, path: temporary)
    }
    try Self.moveIntoPlace(temporary, to: target)
    return ChecksumList.hex(hasher.finalize())
  }

  /// Opens `path` for reading without blocking on a FIFO, and refuses anything but a regular file.
  static func openRegular(_ path: String) throws(PipelineError) -> FileDescriptor {
    let descriptor: FileDescriptor
    do {
      descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
    } catch {
      throw PipelineError.systemCall("open", (error as? Errno) ?? .ioError, path: path)
    }
    var status = stat()
    guard fstat(descriptor.rawValue, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
      try? descriptor.close()
      throw PipelineError(.invalidInput, "\(path) is not a regular file", path: path)
    }
    return descriptor
  }

  /// The bytes of the regular file at `path`.
  static func contents(of path: String) throws(PipelineError) -> [UInt8] {
    var bytes: [UInt8] = []
    try forEachChunk(ofFile: path) { bytes += $0 }
    return bytes
  }

  /// Reads the regular file at `path` (links followed; never blocking on a FIFO) from start to
  /// end, passing each piece of at most 8 MiB to `body`.
  ///
  /// - Throws: ``PipelineError``: what ``openRegular(_:)`` throws, `io` with the failed `read`
  ///   and its `errno`, or what `body` throws.
  static func forEachChunk(
    ofFile path: String, _ body: (UnsafeRawBufferPointer) throws(PipelineError) -> Void
  ) throws(PipelineError) {
    let descriptor = try openRegular(path)
    defer { try? descriptor.close() }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 64)
    defer { buffer.deallocate() }
    while true {
      let count: Int
      do {
        count = try descriptor.read(into: buffer, retryOnInterrupt: true)
      } catch {
        throw PipelineError.systemCall("read", (error as? Errno) ?? .ioError, path: path)
      }
      if count == 0 { return }
      try body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
    }
  }

  /// The input's `config.json` with `quantization_config` set or removed, as transformers writes
  /// it.
  static func configText(_ bytes: [UInt8], change: ConversionPlan.ConfigChange, path: String) throws(PipelineError)
    -> String
  {
    guard let members = (try? JSONParser.parse(bytes))?.members else {
      throw PipelineError(.invalidInput, "\(path) is not a JSON object", path: path)
    }
    var config = members.filter { $0.key != "quantization_config" }
    if case .quantizationConfig(let quantizationConfig) = change {
      config.append(JSONMember("quantization_config", quantizationConfig))
    }
    return JSONWriter.string(JSONValue.object(config).sortingKeys(), style: .pythonIndented) + "\n"
  }
}
