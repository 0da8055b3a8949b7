import Crypto
import Foundation
import SafeTensors

/// A finished output directory checked against the plan that would write it now.
public struct FinishedOutput: Sendable {
  let directory: OutputDirectory
  let plan: ConversionPlan
  let input: String?

  /// The output in `directory`, to be checked against `plan` and the model directory `input`
  /// whose other files it received (`nil` for a single-file input).
  public init(directory: OutputDirectory, plan: ConversionPlan, input: String?) {
    self.directory = directory
    self.plan = plan
    self.input = input
  }

  /// Checks, without writing anything, that the directory holds exactly what `plan` writes: the
  /// same shard files with the same headers and sizes, an index (or not) as planned, the
  /// input's other files and `config.json` as they are now (with the quantization config), and
  /// every file listed in `SHA256SUMS` with that SHA-256.
  ///
  /// Reading and hashing every shard is blocking I/O: it runs on a thread of
  /// ``BlockingIOExecutor/shared``, and the call suspends until it is done.
  ///
  /// - Throws: ``PipelineError`` (`outputExists`) saying what differs.
  public func check() async throws(PipelineError) {
    try await BlockingIOExecutor.shared.execute { [self] () throws(PipelineError) in try checkNow() }
  }

  private func checkNow() throws(PipelineError) {
    let sums = try ChecksumList(directory: directory.path).digests
    let weights = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
      $0.hasSuffix(".safetensors")
    }
    guard Set(weights) == Set(plan.shards.map(\.fileName)) else {
      throw differs("it holds \(weights.sorted()), this conversion writes \(plan.shards.map(\.fileName))")
    }
    let copied = try input.map { input throws(PipelineError) in try expectedDigests(of: input) } ?? [:]
    let expected = Set(plan.shards.map(\.fileName) + (plan.shards.count > 1 ? [ShardIndex.fileName] : []))
      .union(copied.keys)
    guard Set(sums.keys) == expected else {
      let missing = expected.subtracting(sums.keys).sorted()
      let extra = Set(sums.keys).subtracting(expected).sorted()
      throw differs(
        "its SHA256SUMS "
          + [
            missing.isEmpty ? nil : "lacks \(missing)",
            extra.isEmpty ? nil : "lists \(extra), which this conversion does not write",
          ]
          .compactMap { $0 }.joined(separator: " and "))
    }
    for (name, digest) in copied.sorted(by: { $0.key < $1.key }) where sums[name] != digest {
      throw differs("its \(name) is not the input's \(name) as this conversion writes it; the input changed")
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
    let list = ChecksumList(digests: sums)
    if let problem = (list.mismatches(in: directory.path) + list.unlisted(in: directory.path)).first {
      throw PipelineError(
        .outputExists, "\(problem); the output is damaged: remove \(directory.path) and convert again")
    }
  }

  /// The SHA-256 of every file the conversion copies from `input`, `config.json` as it writes it.
  private func expectedDigests(of input: String) throws(PipelineError) -> [String: String] {
    var digests: [String: String] = [:]
    for relative in InputFiles(scanning: input, excluding: directory.path).files {
      let source = join(input, relative)
      if relative == "config.json", let change = plan.configChange {
        let text = try OutputDirectory.configText(
          try OutputDirectory.contents(of: source), change: change, path: source)
        digests[relative] = ChecksumList.hex(SHA256.hash(data: Array(text.utf8)))
      } else {
        digests[relative] = try ChecksumList.digest(ofFile: source)
      }
    }
    return digests
  }

  private func differs(_ what: String) -> PipelineError {
    PipelineError(
      .outputExists, "\(directory.path) holds a different finished conversion (\(what)); choose another directory")
  }
}
