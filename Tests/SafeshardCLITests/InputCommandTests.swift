import Foundation
import SafeTensors
import Testing

/// `convert`, `plan`, `inspect` and `verify` on inputs as users have them, and on bad ones.
@Suite struct InputCommandTests {
  static let tinyLlama = CLIRunner.repository.appendingPathComponent("Examples/tiny-llama").path

  static func scratch() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// Tiny Llama as the Hugging Face cache holds it under `hub`: every file a link into
  /// `blobs/`, `refs/main` naming the snapshot. Returns the snapshot.
  static func cacheTinyLlama(hub: String, extra: [String: String] = [:]) throws -> String {
    let entry = hub + "/models--org--tiny"
    let commit = String(repeating: "c0", count: 20)
    let snapshot = entry + "/snapshots/" + commit
    let manager = FileManager.default
    try manager.createDirectory(atPath: entry + "/blobs", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: entry + "/refs", withIntermediateDirectories: true)
    try commit.write(toFile: entry + "/refs/main", atomically: true, encoding: .utf8)
    var files: [String: Data] = [:]
    for name in try manager.contentsOfDirectory(atPath: tinyLlama) {
      files[name] = try Data(contentsOf: URL(fileURLWithPath: tinyLlama + "/" + name))
    }
    for (path, text) in extra { files[path] = Data(text.utf8) }
    for (index, (path, data)) in files.sorted(by: { $0.key < $1.key }).enumerated() {
      try data.write(to: URL(fileURLWithPath: entry + "/blobs/blob\(index)"))
      let link = snapshot + "/" + path
      try manager.createDirectory(
        atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      let up = String(repeating: "../", count: path.split(separator: "/").count + 1)
      try manager.createSymbolicLink(atPath: link, withDestinationPath: up + "blobs/blob\(index)")
    }
    return snapshot
  }

  @Test func aRepositoryIDInTheCacheConvertsToRealFilesThatVerify() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let hub = scratch.path + "/hub"
    _ = try Self.cacheTinyLlama(
      hub: hub, extra: ["tokenizer.json": #"{"version": "1.0"}"#, "1_Pooling/config.json": #"{"mean": true}"#])
    let output = scratch.path + "/out"
    let environment = ["HF_HUB_CACHE": hub]
    let result = try CLIRunner.run(
      ["convert", "org/tiny", output, "--recipe", "int8-weight-only", "--progress", "none"], environment: environment)
    #expect(result.status == 0, "\(result.standardError)")
    for path in ["tokenizer.json", "1_Pooling/config.json", "generation_config.json"] {
      let type = try FileManager.default.attributesOfItem(atPath: output + "/" + path)[.type] as? FileAttributeType
      #expect(type == .typeRegular, "\(path)")
    }
    let sums = try String(contentsOfFile: output + "/SHA256SUMS", encoding: .utf8)
    #expect(sums.contains("  1_Pooling/config.json\n") && sums.contains("  tokenizer.json\n"))
    #expect(sums.contains("  config.json\n"))
    let verified = try CLIRunner.run(["verify", output])
    #expect(verified.status == 0, "\(verified.standardOutput)")
    // The same command again checks the finished output against the cache.
    let again = try CLIRunner.run(
      ["convert", "org/tiny", output, "--recipe", "int8-weight-only", "--progress", "none"], environment: environment)
    #expect(again.status == 0, "\(again.standardError)")
    #expect(again.standardOutput.contains("already complete"))
    #expect(
      try CLIRunner.run(["plan", "org/tiny", "--recipe", "int8-weight-only"], environment: environment).status == 0)
    #expect(try CLIRunner.run(["inspect", "org/tiny"], environment: environment).status == 0)

    let missing = try CLIRunner.run(
      ["convert", "org/absent", scratch.path + "/o2", "--recipe", "int8-weight-only"], environment: environment)
    #expect(missing.status == 65)
    #expect(missing.standardError.contains(hub + "/models--org--absent"))
    #expect(!FileManager.default.fileExists(atPath: scratch.path + "/o2"))
    let revision = try CLIRunner.run(
      ["convert", "org/tiny", scratch.path + "/o3", "--recipe", "int8-weight-only", "--revision", "v2"],
      environment: environment)
    #expect(revision.status == 65)
    #expect(revision.standardError.contains("not at revision v2"))
  }

  @Test func anEmptyIndexBesideAShardIsRefusedAndVerifyReportsIt() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let model = scratch.path + "/model"
    try FileManager.default.copyItem(atPath: Self.tinyLlama, toPath: model)
    try #"{"metadata": {}, "weight_map": {}}"#.write(
      toFile: model + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
    let output = scratch.path + "/out"
    for recipe in ["int8-weight-only", "reshard"] {
      let result = try CLIRunner.run(["convert", model, output, "--recipe", recipe])
      #expect(result.status == 65)
      #expect(result.standardError.contains("weight_map is empty"))
      #expect(!FileManager.default.fileExists(atPath: output))
    }
    let verified = try CLIRunner.run(["verify", model])
    #expect(verified.status == 1)
    #expect(verified.standardOutput.contains("weight_map is empty"))
    #expect(verified.standardOutput.contains("not named by model.safetensors.index.json"))
  }

  @Test func aFinishedTorchAOOutputGivenAgainWithAQuantizingRecipeIsQuantizedFromItsDequantizedValues() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.path + "/out"
    #expect(try CLIRunner.run(["convert", Self.tinyLlama, output, "--recipe", "int8-weight-only"]).status == 0)
    let before = try Data(contentsOf: URL(fileURLWithPath: output + "/model.safetensors"))
    // OUTPUT == INPUT: not "already complete", and not written over: refused as another run's output.
    let same = try CLIRunner.run(["convert", output, output, "--recipe", "float8-dynamic"])
    #expect(same.status == 64)
    #expect(same.standardError.contains("holds a different finished conversion"), "\(same.standardError)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: output + "/model.safetensors")) == before)
    // Into another directory: its Int8Tensor weights read dequantized, quantized to float8.
    let again = scratch.path + "/again"
    let result = try CLIRunner.run(["convert", output, again, "--recipe", "float8-dynamic", "--progress", "none"])
    #expect(result.status == 0, "\(result.standardError)")
    let config = try JSONParser.parse(Array(Data(contentsOf: URL(fileURLWithPath: again + "/config.json"))))
    #expect(
      config["quantization_config"]?["quant_type"]?["default"]?["_type"]?.string
        == "Float8DynamicActivationFloat8WeightConfig")
  }

  @Test func aSingleFileConvertsWithAWarningAndVerifyWarnsOfTheMissingConfig() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.path + "/out"
    let shard = Self.tinyLlama + "/model-00001-of-00002.safetensors"
    let result = try CLIRunner.run(["convert", shard, output, "--recipe", "int8-weight-only", "--progress", "none"])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardError.contains("warning: \(shard): a single file, so \(output) gets no config.json"))
    let verified = try CLIRunner.run(["verify", output])
    #expect(verified.status == 0, "\(verified.standardOutput)")
    #expect(verified.standardError.contains("has no config.json with a quantization_config"))
    // With the config, no warning.
    let full = scratch.path + "/full"
    #expect(try CLIRunner.run(["convert", Self.tinyLlama, full, "--recipe", "int8-weight-only"]).status == 0)
    #expect(try CLIRunner.run(["verify", full]).standardError.isEmpty)
  }

  @Test func aFIFOAmongTheOtherFilesIsSkippedWithAWarningAndNeverBlocks() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let model = scratch.path + "/model"
    try FileManager.default.copyItem(atPath: Self.tinyLlama, toPath: model)
    #expect(mkfifo(model + "/tokenizer.json", 0o644) == 0)
    let output = scratch.path + "/out"
    let result = try CLIRunner.run(["convert", model, output, "--recipe", "int8-weight-only", "--progress", "none"])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardError.contains("warning: \(model)/tokenizer.json: not copied: not a regular file"))
    #expect(!FileManager.default.fileExists(atPath: output + "/tokenizer.json"))
    #expect(try CLIRunner.run(["verify", output]).status == 0)
  }
}
