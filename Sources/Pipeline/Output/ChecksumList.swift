import Crypto
import Foundation

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
  /// - Throws: ``PipelineError`` (`io`) when it is missing or a line is not `DIGEST  NAME`.
  public init(directory: String) throws(PipelineError) {
    let path = join(directory, Self.fileName)
    guard let data = FileManager.default.contents(atPath: path) else {
      throw PipelineError(.io, "\(path) cannot be read")
    }
    var digests: [String: String] = [:]
    for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
      let fields = line.split(separator: " ", maxSplits: 1)
      let name = fields.count == 2 ? String(fields[1].drop { $0 == " " || $0 == "*" }) : ""
      guard fields.count == 2, fields[0].count == 64, fields[0].allSatisfy(\.isHexDigit), !name.isEmpty,
        !name.contains("/")
      else {
        throw PipelineError(.io, "\(path): line \(number + 1) is not '<sha256>  <file name>'")
      }
      digests[name] = fields[0].lowercased()
    }
    self.init(digests: digests)
  }

  /// The SHA-256 of the file at `path`, read in 8 MiB pieces.
  public static func digest(ofFile path: String) throws(PipelineError) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw PipelineError(.io, "\(path) cannot be opened")
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    do {
      while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    } catch {
      throw PipelineError(.io, "reading \(path): \(error.localizedDescription)")
    }
    return hex(hasher.finalize())
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
