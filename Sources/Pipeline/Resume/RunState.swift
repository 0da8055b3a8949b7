import Foundation
import SystemPackage

/// What this run still writes: one ``ShardStart`` per shard of the plan, decided once from every
/// worker's journal and the files on disk, before any data moves.
///
/// A journal line is trusted only as far as the disk bears it out: a `done` shard must be in
/// place with its recorded size, and a partial shard must hold at least its committed length and
/// begin with the planned header. Anything else starts the shard over.
struct RunState: Sendable {
  /// Where each shard of the plan starts, by shard index.
  let starts: [ShardStart]

  /// Reads (never writes) the journals in `output`'s state folder and checks the files they name.
  init(plan: ConversionPlan, output: OutputDirectory) {
    self.init(plan: plan, output: output, journals: output.allJournals())
  }

  /// Decides from `journals`, the last word on each shard of every worker.
  init(plan: ConversionPlan, output: OutputDirectory, journals: [String: Journal.Entry]) {
    starts = plan.shards.enumerated().map { index, shard in
      guard plan.options.owns(shard: index) else { return .notOwned }
      switch journals[shard.fileName] {
      case .done(let size, let sha256)
      where size == shard.fileSize && output.hasFinished(shard.fileName, size: size, header: shard.headerBytes):
        return .finished(ShardWriter.Result(fileName: shard.fileName, size: size, sha256: sha256))
      case .committed(let length)
      where (shard.headerBytes.count..<shard.fileSize).contains(length)
        && Self.partial(output.partialPath(shard.fileName), holds: length, header: shard.headerBytes):
        return .resume(dataOffset: length - shard.headerBytes.count)
      default:
        return .fresh
      }
    }
  }

  /// The shards finished by earlier runs.
  var finished: [ShardWriter.Result] {
    starts.compactMap { start in
      guard case .finished(let result) = start else { return nil }
      return result
    }
  }

  /// Whether the file at `path` is at least `length` bytes long and begins with `header`.
  static func partial(_ path: String, holds length: Int, header: [UInt8]) -> Bool {
    guard let descriptor = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else {
      return false
    }
    defer { try? descriptor.close() }
    guard let size = try? descriptor.seek(offset: 0, from: .end), size >= length else { return false }
    var head = [UInt8](repeating: 0, count: header.count)
    let read: Void? = head.withUnsafeMutableBytes { try? descriptor.readAll(fromAbsoluteOffset: 0, into: $0) }
    return read != nil && head == header
  }
}
