import Crypto
import Foundation
import SafeTensors
import Testing

@testable import Pipeline

/// Inputs as users have them: Hugging Face cache snapshots (links into `blobs/`), repository
/// ids, sub-folders, special files, and inputs that must be refused.
@Suite struct InputTests {
  /// Writes `model.safetensors` in `directory` with `tensors` (name, dtype, shape), bytes from
  /// a counter, and `config.json` when given.
  static func makeModel(
    in directory: String, tensors: [(String, DType, [Int])] = [("model.layers.0.mlp.up_proj.weight", .bf16, [32, 64])],
    config: String? = #"{"model_type": "llama"}"#
  ) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let specs = tensors.map { TensorSpec(name: $0.0, dtype: $0.1, shape: $0.2) }
    var data: [String: [UInt8]] = [:]
    for spec in specs {
      // Small positive bf16/f16 values (high byte 0x3c) so every scheme takes them.
      data[spec.name] = (0..<(try spec.byteCount())).map { $0 % 2 == 1 ? 0x3c : UInt8(truncatingIfNeeded: $0 * 7) }
    }
    try SafeTensorsWriter.write(
      path: directory + "/model.safetensors", header: SafeTensorsHeader(metadata: nil, tensors: specs), data: data)
    if let config { try config.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8) }
  }

  /// Lays out `files` (relative path → bytes) as a Hugging Face cache entry under `hub`:
  /// `models--org--tiny/blobs/<sha256>`, `snapshots/<commit>/<path>` → `../../blobs/<sha256>`
  /// (one more `../` per sub-folder), `refs/main` → `<commit>`. Returns the snapshot.
  static func makeCacheEntry(hub: String, files: [String: [UInt8]], commit: String = String(repeating: "ab", count: 20))
    throws -> String
  {
    let entry = hub + "/models--org--tiny"
    let manager = FileManager.default
    try manager.createDirectory(atPath: entry + "/blobs", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: entry + "/refs", withIntermediateDirectories: true)
    try commit.write(toFile: entry + "/refs/main", atomically: true, encoding: .utf8)
    let snapshot = entry + "/snapshots/" + commit
    for (path, bytes) in files {
      let blob = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
      try Data(bytes).write(to: URL(fileURLWithPath: entry + "/blobs/" + blob))
      let link = snapshot + "/" + path
      try manager.createDirectory(
        atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      let depth = path.split(separator: "/").count - 1
      try manager.createSymbolicLink(
        atPath: link, withDestinationPath: String(repeating: "../", count: depth + 2) + "blobs/" + blob)
    }
    return snapshot
  }

  /// Every file of `directory`, read.
  static func bytes(_ directory: String) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for path in try FileManager.default.subpathsOfDirectory(atPath: directory)
    where !FileManager.default.isDirectoryAt(directory + "/" + path) {
      files[path] = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + path)))
    }
    return files
  }

  @Test func aCacheSnapshotConvertsToRealFilesWithTheSameBytesSubFoldersIncluded() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    var files = try Self.bytes(ConversionHarness.tinyLlama)
    files["tokenizer.json"] = Array(#"{"version": "1.0"}"#.utf8)
    files["1_Pooling/config.json"] = Array(#"{"pooling_mode_mean_tokens": true}"#.utf8)
    files["original/consolidated.00.pth"] = [1, 2, 3]
    files[".gitattributes"] = Array("*.safetensors filter=lfs".utf8)
    let snapshot = try Self.makeCacheEntry(hub: scratch.path + "/hub", files: files)
    #expect(mkfifo(snapshot + "/pipe.txt", 0o644) == 0)
    let output = scratch.path + "/out"

    let events = EventLog()
    try await ConversionHarness.convert(snapshot, to: output, recipe: "int8-weight-only", progress: events.append)

    let copied = ["1_Pooling/config.json", "generation_config.json", "tokenizer.json"]
    for path in copied {
      let attributes = try FileManager.default.attributesOfItem(atPath: output + "/" + path)
      #expect(attributes[.type] as? FileAttributeType == .typeRegular, "\(path)")
      #expect(Array(try Data(contentsOf: URL(fileURLWithPath: output + "/" + path))) == files[path], "\(path)")
    }
    // SHA256SUMS lists every file of the output, with its digest; nothing else is there.
    let sums = try ChecksumList(directory: output)
    #expect(
      Set(sums.digests.keys) == Set(copied + ["config.json", "model.safetensors"]))
    #expect(Set(try Self.bytes(output).keys) == Set(sums.digests.keys).union(["SHA256SUMS"]))
    #expect(sums.mismatches(in: output).isEmpty && sums.unlisted(in: output).isEmpty)
    // The FIFO and the weights in a sub-folder are named in warnings, not copied.
    let warnings = events.warnings
    #expect(warnings.count == 2)
    #expect(warnings.contains { $0.contains("original/consolidated.00.pth") && $0.contains("sub-folder") })
    #expect(warnings.contains { $0.contains("pipe.txt") && $0.contains("not a regular file") })
  }

  @Test func verifyChecksReportAFileThatLeavesTheOutputOrIsMissingOrUnlisted() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.path + "/out"
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: output, recipe: "int8-weight-only") {
      $0.maxShardSize = 300_000
    }
    let sums = try ChecksumList(directory: output)
    #expect(sums.digests.keys.contains("config.json") && sums.digests.keys.contains(ShardIndex.fileName))
    #expect(sums.mismatches(in: output).isEmpty && sums.unlisted(in: output).isEmpty)
    // A listed file replaced by a link outside, a listed file removed, an unlisted one added.
    try "{}".write(toFile: scratch.path + "/elsewhere.json", atomically: true, encoding: .utf8)
    try FileManager.default.removeItem(atPath: output + "/generation_config.json")
    try FileManager.default.createSymbolicLink(
      atPath: output + "/generation_config.json", withDestinationPath: "../elsewhere.json")
    try FileManager.default.removeItem(atPath: output + "/config.json")
    #expect(mkfifo(output + "/config.json", 0o644) == 0)
    try FileManager.default.removeItem(atPath: output + "/" + ShardIndex.fileName)
    try "x".write(toFile: output + "/notes.txt", atomically: true, encoding: .utf8)
    let mismatches = sums.mismatches(in: output)
    #expect(mismatches.count == 3)
    #expect(mismatches.contains { $0.hasPrefix(output + "/\(ShardIndex.fileName): listed in SHA256SUMS but missing") })
    #expect(mismatches.contains { $0.hasPrefix(output + "/config.json is not a regular file") })
    #expect(mismatches.contains { $0.hasPrefix(output + "/generation_config.json: leads to ") })
    let unlisted = sums.unlisted(in: output)
    #expect(unlisted.count == 2)
    #expect(unlisted.contains { $0.hasPrefix(output + "/generation_config.json: a symbolic link to ") })
    #expect(unlisted.contains { $0.hasPrefix(output + "/notes.txt: not listed") })
  }

  @Test func theFinishedOutputCheckNoticesAMissingConfigOrAChangedInputFile() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = scratch.path + "/in"
    try FileManager.default.copyItem(atPath: ConversionHarness.tinyLlama, toPath: input)
    let output = scratch.path + "/out"
    try await ConversionHarness.convert(input, to: output, recipe: "int8-weight-only")
    let (_, plan) = try ConversionHarness.plan(input, recipe: "int8-weight-only")
    let finished = FinishedOutput(directory: OutputDirectory(path: output), plan: plan, input: input)
    try await finished.check()

    let config = try Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))
    try FileManager.default.removeItem(atPath: output + "/config.json")
    let missing = await #expect(throws: PipelineError.self) { try await finished.check() }
    #expect(missing?.message.contains("config.json: listed in SHA256SUMS but missing") == true)
    try config.write(to: URL(fileURLWithPath: output + "/config.json"))
    try await finished.check()

    // A file SHA256SUMS does not list, as verify reports it.
    try "x".write(toFile: output + "/stray.txt", atomically: true, encoding: .utf8)
    let stray = await #expect(throws: PipelineError.self) { try await finished.check() }
    #expect(stray?.message.contains("stray.txt") == true)
    try FileManager.default.removeItem(atPath: output + "/stray.txt")
    try await finished.check()

    try #"{"do_sample": true}"#.write(toFile: input + "/generation_config.json", atomically: true, encoding: .utf8)
    let changed = await #expect(throws: PipelineError.self) { try await finished.check() }
    #expect(changed?.message.contains("generation_config.json is not the input's") == true)
    try FileManager.default.removeItem(atPath: input + "/generation_config.json")
    try "{}".write(toFile: input + "/tokenizer.json", atomically: true, encoding: .utf8)
    let added = await #expect(throws: PipelineError.self) { try await finished.check() }
    #expect(added?.message.contains("lacks [\"tokenizer.json\"]") == true)
  }

  @Test func aFinishedOutputGivenAsItsOwnInputToReshardIsAlreadyComplete() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.path + "/out"
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: output, recipe: "reshard") {
      $0.maxShardSize = 300_000
    }
    let (_, plan) = try ConversionHarness.plan(output, recipe: "reshard") { $0.maxShardSize = 300_000 }
    try await FinishedOutput(directory: OutputDirectory(path: output), plan: plan, input: output).check()
  }

  @Test func aRepositoryIDResolvesInTheCacheAtARefOrCommit() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let hub = scratch.path + "/hub"
    let commit = String(repeating: "ab", count: 20)
    let snapshot = try Self.makeCacheEntry(
      hub: hub, files: ["model.safetensors": [], "config.json": []], commit: commit)
    try "0123".write(toFile: hub + "/models--org--tiny/refs/v1", atomically: true, encoding: .utf8)
    try "\(commit)\n".write(toFile: hub + "/models--org--tiny/refs/stable", atomically: true, encoding: .utf8)
    #expect(try ModelLocation.resolve("org/tiny", revision: "stable", environment: ["HF_HUB_CACHE": hub]) == snapshot)
    #expect(try ModelLocation.resolve("org/tiny", environment: ["HF_HUB_CACHE": hub]) == snapshot)
    #expect(try ModelLocation.resolve("org/tiny", environment: ["HF_HOME": scratch.path]) == snapshot)
    let home = scratch.path + "/home"
    let inHome = try Self.makeCacheEntry(hub: home + "/.cache/huggingface/hub", files: ["model.safetensors": []])
    #expect(try ModelLocation.resolve("org/tiny", environment: ["HOME": home]) == inHome)
    #expect(try ModelLocation.resolve("org/tiny", environment: ["XDG_CACHE_HOME": home + "/.cache"]) == inHome)
    #expect(
      try ModelLocation.resolve("org/tiny", revision: commit, environment: ["HF_HUB_CACHE": hub]) == snapshot)
    // refs/v1 names a commit that is not in snapshots/.
    let stale = #expect(throws: PipelineError.self) {
      try ModelLocation.resolve("org/tiny", revision: "v1", environment: ["HF_HUB_CACHE": hub])
    }
    #expect(stale?.message.contains("not at revision v1") == true && stale?.message.contains(commit) == true)
    // Not in the cache: says where it looked, and that nothing is downloaded.
    let absent = #expect(throws: PipelineError.self) {
      try ModelLocation.resolve("org/other", environment: ["HF_HUB_CACHE": hub])
    }
    #expect(absent?.code == .invalidInput && absent?.path == hub + "/models--org--other")
    #expect(absent?.message.contains("$HF_HUB_CACHE") == true && absent?.message.contains("does not download") == true)
    // A local path is never looked up; --revision goes with an id only.
    let local = #expect(throws: PipelineError.self) {
      try ModelLocation.resolve(snapshot, revision: "main", environment: ["HF_HUB_CACHE": hub])
    }
    #expect(local?.code == .invalidOption)
  }

  /// An input that cannot be quantized, and what the refusal must name.
  struct Refused: CustomTestStringConvertible, Sendable {
    var name: String
    var tensors: [(String, DType, [Int])]
    var config: String?
    /// What the message must contain, and the tensor it names (`nil`: the file only).
    var says: String
    var tensor: String?
    var testDescription: String { name }
  }

  static let linear = ("model.layers.0.mlp.up_proj.weight", DType.bf16, [32, 64])
  static let refused: [Refused] = [
    Refused(
      name: "gptq config", tensors: [linear],
      config: #"{"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}"#,
      says: "already quantized with gptq"),
    // Block FP8 is dequantized, with the block size of the config only.
    Refused(
      name: "fp8 config without a block size", tensors: [linear],
      config: #"{"quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}"#,
      says: "has no weight_block_size"),
    Refused(
      name: "mlx config", tensors: [linear], config: #"{"quantization": {"group_size": 64, "bits": 4}}"#,
      says: "already quantized with mlx"),
    Refused(
      name: "fp8 weights with weight_scale_inv",
      tensors: [
        linear, ("model.layers.1.mlp.up_proj.weight", .f8e4m3, [32, 64]),
        ("model.layers.1.mlp.up_proj.weight_scale_inv", .f32, [1, 1]),
      ], says: "already quantized with fp8", tensor: "model.layers.1.mlp.up_proj.weight"),
    Refused(
      name: "gptq qweight", tensors: [linear, ("model.layers.1.mlp.up_proj.qweight", .i32, [8, 64])],
      says: "already quantized with gptq or awq", tensor: "model.layers.1.mlp.up_proj.qweight"),
    Refused(
      name: "int8 weight with weight_scale",
      tensors: [
        linear, ("model.layers.1.mlp.up_proj.weight", .i8, [32, 64]),
        ("model.layers.1.mlp.up_proj.weight_scale", .bf16, [32, 1]),
      ],
      says: "already quantized with a scaled 8-bit or packed 4-bit format",
      tensor: "model.layers.1.mlp.up_proj.weight_scale"),
    Refused(
      name: "no config.json", tensors: [linear], config: nil, says: "has no config.json"),
    Refused(
      name: "nothing to quantize", tensors: [("model.layers.0.mlp.up_proj.kernel", .bf16, [32, 64])],
      says: "quantizes none of the 1 tensors"),
    Refused(name: "no tensors", tensors: [], says: "holds no tensors"),
  ]

  @Test(arguments: refused)
  func anInputThatCannotBeQuantizedIsRefusedNamingWhy(_ case: Refused) throws {
    try withTemporaryDirectory { scratch in
      let model = scratch + "/model"
      if let config = `case`.config {
        try Self.makeModel(in: model, tensors: `case`.tensors, config: config)
      } else if `case`.name == "no config.json" {
        try Self.makeModel(in: model, tensors: `case`.tensors, config: nil)
      } else {
        try Self.makeModel(in: model, tensors: `case`.tensors)
      }
      let error = #expect(throws: PipelineError.self) {
        try ConversionHarness.plan(model, recipe: "int8-weight-only")
      }
      #expect(error?.code == .invalidInput)
      #expect(error?.message.contains(`case`.says) == true, "\(error?.message ?? "")")
      #expect(error?.tensor == `case`.tensor)
      #expect(error?.path?.hasPrefix(model) == true)
      // Dequantizing refuses what it cannot dequantize (a config.json is not needed for it, and
      // nothing to quantize is a plain copy).
      if !["no config.json", "nothing to quantize"].contains(`case`.name) {
        let dequantizing = #expect(throws: PipelineError.self) {
          try ConversionHarness.plan(model, recipe: "dequantize")
        }
        #expect(dequantizing?.message.contains(`case`.says) == true, "\(dequantizing?.message ?? "")")
      }
      // Re-sharding takes it as it is, but for an input without tensors.
      if `case`.name == "no tensors" {
        #expect(throws: PipelineError.self) { try ConversionHarness.plan(model, recipe: "reshard") }
      } else {
        #expect(try ConversionHarness.plan(model, recipe: "reshard").1.entries.count == `case`.tensors.count)
      }
    }
  }

  @Test func aSingleFileWithoutConfigConvertsWithAWarning() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    try Self.makeModel(in: scratch.path + "/model", config: nil)
    let file = scratch.path + "/model/model.safetensors"
    let events = EventLog()
    try await ConversionHarness.convert(
      file, to: scratch.path + "/out", recipe: "int8-weight-only", progress: events.append)
    #expect(events.warnings.count == 1)
    #expect(events.warnings.first?.contains("gets no config.json") == true)
  }

  @Test func aCacheEntryRootOrPickledWeightsGetAHint() throws {
    try withTemporaryDirectory { scratch in
      let snapshot = try Self.makeCacheEntry(hub: scratch, files: ["model.safetensors": []])
      let root = scratch + "/models--org--tiny"
      let error = #expect(throws: PipelineError.self) { try ModelLocation.resolve(root) }
      #expect(error?.message.contains("root of a Hugging Face cache entry") == true)
      #expect(error?.message.contains("snapshots/" + (snapshot as NSString).lastPathComponent) == true)
      #expect(error?.message.contains("repository id org/tiny") == true)
      // transformers' pickle names are a checkpoint (PickleInput); other pickle names get a hint.
      let pickled = scratch + "/bin"
      try FileManager.default.createDirectory(atPath: pickled, withIntermediateDirectories: true)
      for name in ["pytorch_model.bin", "config.json"] {
        try "x".write(toFile: pickled + "/" + name, atomically: true, encoding: .utf8)
      }
      #expect(try ModelLocation.resolve(pickled) == pickled)
      let consolidated = scratch + "/pth"
      try FileManager.default.createDirectory(atPath: consolidated, withIntermediateDirectories: true)
      try "x".write(toFile: consolidated + "/consolidated.00.pth", atomically: true, encoding: .utf8)
      let pth = #expect(throws: PipelineError.self) { try ModelLocation.resolve(consolidated) }
      #expect(pth?.code == .invalidInput)
      #expect(pth?.message.contains("consolidated.00.pth (PyTorch pickle)") == true)
      #expect(pth?.message.contains("give the file itself") == true)
    }
  }
}

/// Collects a run's warnings.
final class EventLog: Sendable {
  private let lock = NSLock()
  nonisolated(unsafe) private var events: [ProgressEvent] = []

  var append: @Sendable (ProgressEvent) -> Void {
    { [self] event in lock.withLock { events.append(event) } }
  }

  var warnings: [String] {
    lock.withLock {
      events.compactMap {
        if case .fileWarning(let path, let message) = $0 { return "\(path): \(message)" }
        return nil
      }
    }
  }
}

extension FileManager {
  fileprivate func isDirectoryAt(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
  }
}

@Suite struct InputFilesEdgeTests {
  @Test func aLinkToAFolderOutsideTheInputIsSkippedNotWalked() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = scratch.path + "/in"
    let outside = scratch.path + "/outside"
    try FileManager.default.createDirectory(atPath: input + "/sub", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
    try "a".write(toFile: input + "/sub/a.txt", atomically: true, encoding: .utf8)
    try "b".write(toFile: outside + "/b.txt", atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: input + "/away", withDestinationPath: "../outside")
    try FileManager.default.createSymbolicLink(atPath: input + "/here", withDestinationPath: "sub")
    let scan = InputFiles(scanning: input)
    // A folder reached twice (here -> sub) is walked once, under the first name in order.
    #expect(scan.files == ["here/a.txt"])
    #expect(scan.skipped.map(\.path) == ["away"])
  }

  @Test func namesThatStartWithASpaceOrAStarReadBackFromSHA256SUMSUnchanged() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let digest = String(repeating: "ab", count: 32)
    let list = ChecksumList(digests: [" readme": digest, "*notes.txt": digest, "plain": digest])
    try list.text.write(toFile: scratch.path + "/SHA256SUMS", atomically: true, encoding: .utf8)
    let read = try ChecksumList(directory: scratch.path)
    #expect(read.digests == list.digests)
  }
}
