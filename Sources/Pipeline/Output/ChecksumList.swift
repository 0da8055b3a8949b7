import Crypto
import Foundation
import SystemPackage

/// A `SHA256SUMS` file: `<hex digest>  <file name>` lines, as `sha256sum` writes and checks them.
public struct ChecksumList: Sendable, Equatable {
  /// The file name inside a model directory.
  public static let fileName = "SHA256SUMS"

  /// File name → lowercase hex SHA-256.
  public var digests: [String: String]

  public init(digests: [String: String]) {
    self.digests = digests
  }

  /// The text of the file: one line a file, sorted by name.
  public var text: String {
    digests.sorted { $0.key < $1.key }.map { "\($0.value)  \($0.key)\n" }.joined()
  }

  /// Reads `directory/SHA256SUMS`.
  ///
  /// - Throws: ``PipelineError`` (`io`) when it cannot be read, with the system error as its
  ///   cause; (`invalidInput`) when a line is not `DIGEST  NAME`.
  public init(directory: String) throws(PipelineError) {
    let path = join(directory, Self.fileName)
    var data: [UInt8] = []
    try Self.forEachChunk(ofFile: path) { data += $0 }
    var digests: [String: String] = [:]
    for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
      let fields = line.split(separator: " ", maxSplits: 1)
      let name = fields.count == 2 ? String(fields[1].drop { $0 == " " || $0 == "*" }) : ""
      guard fields.count == 2, fields[0].count == 64, fields[0].allSatisfy(\.isHexDigit), !name.isEmpty,
        !name.contains("/")
      else {
        throw PipelineError(.invalidInput, "\(path): line \(number + 1) is not '<sha256>  <file name>'", path: path)
      }
      digests[name] = fields[0].lowercased()
    }
    self.init(digests: digests)
  }

  /// The SHA-256 of the file at `path`, read in 8 MiB pieces.
  ///
  /// - Throws: ``PipelineError`` (`io`) with the failed `open` or `read` and its `errno`.
  public static func digest(ofFile path: String) throws(PipelineError) -> String {
    var hasher = SHA256()
    try forEachChunk(ofFile: path) { hasher.update(bufferPointer: $0) }
    return hex(hasher.finalize())
  }

  /// Reads the file at `path` from start to end, passing each piece of at most 8 MiB to `body`.
  private static func forEachChunk(ofFile path: String, _ body: (UnsafeRawBufferPointer) -> Void)
    throws(PipelineError)
  {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw PipelineError.systemCall("open", Errno(rawValue: errno), path: path) }
    defer { close(descriptor) }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 64)
    defer { buffer.deallocate() }
    while true {
      let count = read(descriptor, buffer.baseAddress, buffer.count)
      if count < 0 && errno == EINTR { continue }
      guard count >= 0 else { throw PipelineError.systemCall("read", Errno(rawValue: errno), path: path) }
      if count == 0 { return }
      body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
    }
  }

  /// A digest as lowercase hex, as `sha256sum` prints it.
  static func hex(_ digest: SHA256.Digest) -> String {
    digest.map { String(format: "%02x", $0) }.joined()
  }

  /// Every listed file of `directory` whose SHA-256 differs or that is missing, one message each.
  public func mismatches(in directory: String) -> [String] {
    digests.keys.sorted().compactMap { name in
      let path = join(directory, name)
      guard FileManager.default.fileExists(atPath: path) else {
        return "\(path): listed in \(Self.fileName) but missing [rule checksum]"
      }
      do {
        let actual = try Self.digest(ofFile: path)
        return actual == digests[name]
          ? nil : "\(path): SHA-256 \(actual) differs from \(digests[name]!) in \(Self.fileName) [rule checksum]"
      } catch {
        return "\(error) [rule checksum]"
      }
    }
  }
}
