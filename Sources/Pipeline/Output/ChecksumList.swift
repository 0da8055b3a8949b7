import Crypto
import Foundation
import SystemPackage

/// A `SHA256SUMS` file: `<hex digest>  <path>` lines, as `sha256sum` writes and checks them
/// (`sha256sum -c SHA256SUMS` in the directory). It lists every file of a converted output:
/// the shards, `config.json`, and the input's other files, those in sub-folders by their
/// relative path (`1_Pooling/config.json`).
public struct ChecksumList: Sendable, Equatable {
  /// The file name inside a model directory.
  public static let fileName = "SHA256SUMS"

  /// Relative path → lowercase hex SHA-256.
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
    try OutputDirectory.forEachChunk(ofFile: path) { data += $0 }
    var digests: [String: String] = [:]
    for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
      // `DIGEST  NAME` (text mode) or `DIGEST *NAME` (binary mode), as sha256sum writes them:
      // exactly one mode character, so a name that starts with a space or a star reads back as is.
      let fields = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
      let name =
        fields.count == 2 && (fields[1].hasPrefix(" ") || fields[1].hasPrefix("*")) ? String(fields[1].dropFirst()) : ""
      guard fields.count == 2, fields[0].count == 64, fields[0].allSatisfy(\.isHexDigit), Self.isRelativePath(name)
      else {
        throw PipelineError(
          .invalidInput, "\(path): line \(number + 1) is not '<sha256>  <relative path>' inside the directory",
          path: path)
      }
      digests[name] = fields[0].lowercased()
    }
    self.init(digests: digests)
  }

  /// The SHA-256 of the regular file at `path` (links followed), read in 8 MiB pieces.
  ///
  /// - Throws: ``PipelineError``: `invalidInput` when it is not a regular file (a FIFO is never
  ///   opened in a way that blocks), `io` with the failed `open` or `read` and its `errno`.
  public static func digest(ofFile path: String) throws(PipelineError) -> String {
    var hasher = SHA256()
    try OutputDirectory.forEachChunk(ofFile: path) { hasher.update(bufferPointer: $0) }
    return hex(hasher.finalize())
  }

  /// A digest as lowercase hex, as `sha256sum` prints it.
  static func hex(_ digest: SHA256.Digest) -> String {
    digest.map { String(format: "%02x", $0) }.joined()
  }

  /// Whether `name` is a path inside the directory: not absolute, no empty, `.` or `..` part.
  static func isRelativePath(_ name: String) -> Bool {
    !name.isEmpty
      && name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
        !$0.isEmpty && $0 != "." && $0 != ".."
      }
  }

  /// Every listed file of `directory` whose SHA-256 differs, that is missing, or that is a
  /// symbolic link leading outside `directory`, one message each.
  public func mismatches(in directory: String) -> [String] {
    let root = Self.realPath(directory) ?? directory
    return digests.keys.sorted().compactMap { name in
      let path = join(directory, name)
      guard let real = Self.realPath(path) else {
        return "\(path): listed in \(Self.fileName) but missing [rule checksum]"
      }
      guard Self.isInside(real, root) else {
        return "\(path): leads to \(real), outside \(directory) (a symbolic link) [rule checksum]"
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

  /// Every file of `directory` (sub-folders included, dot-files and dot-folders left out) that
  /// the list does not name, and every symbolic link that dangles or leads outside `directory`,
  /// one message each.
  public func unlisted(in directory: String) -> [String] {
    let root = Self.realPath(directory) ?? directory
    var problems: [String] = []
    func walk(_ relative: String) {
      let folder = relative.isEmpty ? directory : join(directory, relative)
      for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
      where !name.hasPrefix(".") && !(relative.isEmpty && name == Self.fileName) {
        let path = relative.isEmpty ? name : relative + "/" + name
        let full = join(directory, path)
        var status = stat()
        guard lstat(full, &status) == 0 else { continue }
        if status.st_mode & S_IFMT == S_IFLNK {
          guard let real = Self.realPath(full) else {
            problems.append("\(full): a symbolic link that leads nowhere [rule checksum]")
            continue
          }
          guard Self.isInside(real, root) else {
            problems.append("\(full): a symbolic link to \(real), outside \(directory) [rule checksum]")
            continue
          }
        }
        var target = stat()
        if status.st_mode & S_IFMT == S_IFDIR {
          walk(path)
        } else if digests[path] == nil && stat(full, &target) == 0 && target.st_mode & S_IFMT != S_IFDIR {
          problems.append("\(full): not listed in \(Self.fileName) [rule checksum]")
        }
      }
    }
    walk("")
    return problems
  }

  /// `path` with every link resolved, or `nil` when it does not exist.
  static func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  /// Whether the resolved `path` is `root` or inside it.
  static func isInside(_ path: String, _ root: String) -> Bool {
    path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
  }
}
