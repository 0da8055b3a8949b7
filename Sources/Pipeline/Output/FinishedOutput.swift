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
  /// Reading and hashing every shard is blocking I/O: it runs on a thread of its own, and the
  /// call suspends until it is done.
  ///
  /// - Throws: ``PipelineError`` (`outputExists`) saying what differs.
  public func check() async throws(PipelineError) {
    do {
      try await blockingIO { [self] in try checkNow() }
    } catch {
      throw (error as? PipelineError) ?? PipelineError(.io, "\(error)")
    }
  }

  private func checkNow() throws(PipelineError) {
    let sums = try ChecksumList(directory: directory.path).digests
    let weights = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
      $0.hasSuffix(".safetensors")
    }
    guard Set(weights) == Set(plan.shards.map(\.fileName)) else {
      throw differs("it holds \(weights.sorted()), this conversion writes \(plan.shards.map(\.fileName))")
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
      let head = (try? handle.read(upToCount: shard.headerBytes.count)) ?? Data()
      try? handle.close()
      guard Array(head) == shard.headerBytes else { throw differs("\(shard.fileName) has another header") }
      let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
      guard size == shard.fileSize else { throw differs("\(shard.fileName) is \(size) bytes, not \(shard.fileSize)") }
    }
    if let problem = ChecksumList(digests: sums).mismatches(in: directory.path).first {
      throw PipelineError(.outputExists, "\(problem); the output is damaged")
    }
  }

  private func differs(_ what: String) -> PipelineError {
    PipelineError(
      .outputExists, "\(directory.path) holds a different finished conversion (\(what)); choose another directory")
  }
}
