import Crypto
import Foundation
import SafeTensors

/// A finished output directory checked against the plan that would write it now.
public struct FinishedOutput: Sendable {
  let directory: OutputDirectory
  let plan: ConversionPlan

  public init(directory: OutputDirectory, plan: ConversionPlan) {
    self.directory = directory
    self.plan = plan
  }

  /// Checks, without writing anything, that the directory holds exactly what `plan` writes: the
  /// same shard files with the same headers and sizes, an index (or not) as planned, and shards
  /// whose SHA-256 matches `SHA256SUMS`.
  ///
  /// - Throws: ``PipelineError`` (`outputExists`) saying what differs.
  public func check() throws(PipelineError) {
    let sumsPath = join(directory.path, "SHA256SUMS")
    guard let sumsData = FileManager.default.contents(atPath: sumsPath) else {
      throw PipelineError(.outputExists, "\(sumsPath) cannot be read")
    }
    var sums: [String: String] = [:]
    for line in String(decoding: sumsData, as: UTF8.self).split(separator: "\n") {
      let fields = line.split(separator: " ", maxSplits: 1)
      guard fields.count == 2 else { continue }
      sums[String(fields[1].drop { $0 == " " || $0 == "*" })] = String(fields[0])
    }
    guard Set(sums.keys) == Set(plan.shards.map(\.fileName)) else {
      throw differs("its SHA256SUMS lists \(sums.keys.sorted()), this conversion writes \(plan.shards.map(\.fileName))")
    }
    let indexPath = join(directory.path, ShardIndex.fileName)
    if plan.shards.count > 1 {
      guard let index = FileManager.default.contents(atPath: indexPath),
        String(decoding: index, as: UTF8.self) == OutputDirectory.indexText(plan)
      else { throw differs("\(ShardIndex.fileName) is not the one this conversion writes") }
    } else if FileManager.default.fileExists(atPath: indexPath) {
      throw differs("it has an index, this conversion writes a single model.safetensors")
    }
    for shard in plan.shards {
      let path = join(directory.path, shard.fileName)
      guard let handle = FileHandle(forReadingAtPath: path) else { throw differs("\(shard.fileName) is missing") }
      defer { try? handle.close() }
      let head = (try? handle.read(upToCount: shard.headerBytes.count)) ?? Data()
      guard Array(head) == shard.headerBytes else { throw differs("\(shard.fileName) has another header") }
      var hasher = SHA256()
      hasher.update(data: head)
      var size = head.count
      while let chunk = try? handle.read(upToCount: 8 << 20), !chunk.isEmpty {
        hasher.update(data: chunk)
        size += chunk.count
      }
      guard size == shard.fileSize else { throw differs("\(shard.fileName) is \(size) bytes, not \(shard.fileSize)") }
      let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
      guard digest == sums[shard.fileName] else {
        throw PipelineError(.outputExists, "\(path): SHA-256 \(digest) does not match SHA256SUMS; the file is damaged")
      }
    }
  }

  private func differs(_ what: String) -> PipelineError {
    PipelineError(
      .outputExists, "\(directory.path) holds a different finished conversion (\(what)); choose another directory")
  }
}
