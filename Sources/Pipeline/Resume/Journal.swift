import Foundation
import Synchronization
import SystemPackage

/// The durable record of a run's progress: an append-only log in the state folder.
///
/// Each line is written and fsynced before the run goes on: `commit NAME LENGTH` after a partial
/// shard's first `LENGTH` bytes are fsynced, `done NAME SIZE SHA256` after a finished shard is
/// fsynced and renamed into place. Reading stops at the first line that is incomplete (a crash
/// during an append) or does not parse, so a torn or damaged journal only ever loses progress,
/// never claims bytes that are not on disk.
final class Journal: Sendable {
  /// What the journal says about one shard.
  enum Entry: Sendable, Equatable {
    /// The first `length` bytes of the partial file (header included) are durable.
    case committed(length: Int)
    /// The shard is finished, fsynced and in place.
    case done(size: Int, sha256: String)
  }

  let path: String
  /// The file, behind a lock so that lines from several shard writers never interleave.
  private let descriptor: Mutex<FileDescriptor>

  /// Opens (creating if needed) this worker's journal at `path` for appending. A torn or
  /// damaged end (what ``read(_:)`` ignores) is cut off first, so that the next line starts on a
  /// line of its own.
  init(path: String) throws(PipelineError) {
    let opened: FileDescriptor
    do {
      opened = try FileDescriptor.open(
        FilePath(path), .writeOnly, options: [.create, .append, .closeOnExec],
        permissions: [.ownerReadWrite, .groupRead, .otherRead])
    } catch {
      throw PipelineError(.io, "opening \(path): \(error)", path: path, cause: error)
    }
    let valid = Self.parse(FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []).validLength
    do {
      if try opened.seek(offset: 0, from: .end) > valid { try opened.resize(to: Int64(valid)) }
    } catch {
      try? opened.close()
      throw PipelineError(.io, "cutting the torn end of \(path): \(error)", path: path, cause: error)
    }
    descriptor = Mutex(opened)
    self.path = path
  }

  deinit {
    descriptor.withLock { try? $0.close() }
  }

  /// What the journal at `path` records, the last word for each shard; empty when it is missing.
  /// An incomplete or unreadable line and everything after it are ignored. Reading never writes:
  /// other workers' journals are read while they append to them.
  static func read(_ path: String) -> [String: Entry] {
    guard let data = FileManager.default.contents(atPath: path) else { return [:] }
    return parse([UInt8](data)).entries
  }

  /// The entries of a journal's bytes, and the length of the lines that parse (the valid prefix).
  static func parse(_ bytes: [UInt8]) -> (entries: [String: Entry], validLength: Int) {
    var entries: [String: Entry] = [:]
    var lineStart = 0
    for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
      let fields = String(decoding: bytes[lineStart..<index], as: UTF8.self).split(separator: " ").map(String.init)
      if fields.count == 3, fields[0] == "commit", let length = Int(fields[2]), length >= 0 {
        entries[fields[1]] = .committed(length: length)
      } else if fields.count == 4, fields[0] == "done", let size = Int(fields[2]), size >= 0, fields[3].count == 64,
        fields[3].allSatisfy(\.isHexDigit)
      {
        entries[fields[1]] = .done(size: size, sha256: fields[3])
      } else {
        break
      }
      lineStart = index + 1
    }
    return (entries, lineStart)
  }

  /// Records that the first `length` bytes of `fileName`'s partial file are fsynced.
  func commit(_ fileName: String, length: Int) throws(PipelineError) {
    try append("commit \(fileName) \(length)\n")
  }

  /// Records that `fileName` is finished and in place.
  func done(_ fileName: String, size: Int, sha256: String) throws(PipelineError) {
    try append("done \(fileName) \(size) \(sha256)\n")
  }

  /// Appends `line` and fsyncs it before returning.
  private func append(_ line: String) throws(PipelineError) {
    let failure: (any Error & Sendable)? = descriptor.withLock { descriptor in
      do {
        _ = try descriptor.writeAll(line.utf8)
        try descriptor.sync()
        return nil
      } catch {
        return error
      }
    }
    if let failure { throw PipelineError(.io, "writing \(path): \(failure)", path: path, cause: failure) }
  }
}
