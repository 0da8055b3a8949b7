import Foundation
import SafeTensors
import Testing

@Suite struct ConvertCommandTests {
  static let tinyLlama = CLIRunner.repository.appendingPathComponent("Examples/tiny-llama").path

  static func scratch() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  @Test func convertWritesAVerifiableModelAndARerunChecksItWithoutRewriting() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let first = try CLIRunner.run([
      "convert", Self.tinyLlama, output, "--recipe", "int8-weight-only", "--max-shard-size", "200KB",
    ])
    #expect(first.status == 0, "\(first.standardError)")
    #expect(first.standardOutput.hasPrefix("\(output): "))
    let verified = try CLIRunner.run(["verify", output])
    #expect(verified.status == 0)
    #expect(verified.standardOutput.contains("14 torchao weights"))

    let shard = URL(fileURLWithPath: output).appendingPathComponent("model-00001-of-00003.safetensors").path
    let before = try FileManager.default.attributesOfItem(atPath: shard)[.modificationDate] as? Date
    let again = try CLIRunner.run([
      "convert", Self.tinyLlama, output, "--recipe", "int8-weight-only", "--max-shard-size", "200KB",
    ])
    #expect(again.status == 0)
    #expect(again.standardOutput.contains("already complete"))
    #expect(try FileManager.default.attributesOfItem(atPath: shard)[.modificationDate] as? Date == before)

    // The same output for another conversion is refused.
    let other = try CLIRunner.run([
      "convert", Self.tinyLlama, output, "--recipe", "float8-weight-only", "--max-shard-size", "200KB",
    ])
    #expect(other.status == 64)
    #expect(other.standardError.contains("holds a different finished conversion"))
  }

  @Test func verifyChecksEveryShardAgainstSHA256SUMS() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    #expect(
      try CLIRunner.run([
        "convert", Self.tinyLlama, output, "--recipe", "int4-weight-only", "--max-shard-size", "300KB",
      ]).status == 0)
    // Flip one byte of tensor data: the format is still valid, the checksum is not.
    let shard = output + "/model-00002-of-00002.safetensors"
    let handle = try #require(FileHandle(forUpdatingAtPath: shard))
    try handle.seek(toOffset: 100_000)
    let byte = try #require(handle.readData(ofLength: 1).first)
    try handle.seek(toOffset: 100_000)
    handle.write(Data([byte ^ 0x40]))
    try handle.close()
    let result = try CLIRunner.run(["verify", output])
    #expect(result.status == 1)
    let lines = result.standardOutput.split(separator: "\n")
    #expect(lines.count == 2)
    #expect(lines.first?.hasPrefix(shard + ": SHA-256 ") == true && lines.first?.hasSuffix("[rule checksum]") == true)
  }

  @Test func aNonEmptyOutputThatIsNotOursIsRefused() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    try "precious".write(to: scratch.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
    let result = try CLIRunner.run(["convert", Self.tinyLlama, scratch.path, "--recipe", "int8-weight-only"])
    #expect(result.status == 64)
    #expect(result.standardError.contains("not empty and not a safeshard output"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["notes.txt"])
  }

  @Test func anUnknownRecipeIsRefusedListingTheBuiltInOnes() throws {
    let result = try CLIRunner.run(["convert", Self.tinyLlama, "/tmp/never-created", "--recipe", "int3-magic"])
    #expect(result.status == 64)
    #expect(result.standardError.contains("int8-weight-only"))
    #expect(!FileManager.default.fileExists(atPath: "/tmp/never-created"))
  }

  @Test func float8DynamicPerRowRefusesFloat16WeightsNamingTheTensor() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let path = scratch.appendingPathComponent("model.safetensors").path
    let header = try SafeTensorsHeader(
      metadata: nil, tensors: [TensorSpec(name: "layer.proj.weight", dtype: .f16, shape: [32, 32])])
    try SafeTensorsWriter.write(
      path: path, header: header, data: ["layer.proj.weight": [UInt8](repeating: 0x3C, count: 2048)])
    let result = try CLIRunner.run([
      "convert", path, scratch.appendingPathComponent("out").path, "--recipe", "float8-dynamic",
    ])
    #expect(result.status == 65)
    #expect(result.standardError.contains("layer.proj.weight"))
    #expect(result.standardError.contains("bfloat16"))
  }

  @Test func planShowsWhatConvertWritesAsJSON() throws {
    let result = try CLIRunner.run(["plan", Self.tinyLlama, "--recipe", "nvfp4", "--json"])
    #expect(result.status == 0, "\(result.standardError)")
    let plan = try JSONParser.parse(result.standardOutput.trimmingCharacters(in: .newlines))
    let entries = try #require(plan["entries"]?.array)
    #expect(entries.count == 21)
    let quantized = entries.filter { $0["action"]?.string == "quantize" }
    #expect(quantized.count == 14)
    #expect(quantized.allSatisfy { $0["subclass"]?.string == "NVFP4Tensor" })
    #expect(entries.first { $0["name"]?.string == "lm_head.weight" }?["reason"]?.string?.contains("lm_head") == true)
    #expect(plan["shards"]?.array?.count == 1)
    let text = try CLIRunner.run(["plan", Self.tinyLlama, "--recipe", "nvfp4"])
    #expect(text.standardOutput.contains("model.layers.0.mlp.down_proj.weight"))
    #expect(text.standardOutput.contains("NVFP4Tensor"))
  }

  @Test func planShowsTheInputTensorsAFusedExpertParameterGathers() throws {
    let mixtral = CLIRunner.repository.appendingPathComponent("Tests/Fixtures/moe/mixtral/raw").path
    let result = try CLIRunner.run(["plan", mixtral, "--recipe", "int8-weight-only-experts", "--json"])
    #expect(result.status == 0, "\(result.standardError)")
    let plan = try JSONParser.parse(result.standardOutput.trimmingCharacters(in: .newlines))
    let entries = try #require(plan["entries"]?.array)
    let fused = try #require(entries.first { $0["parameter"]?.string == "model.layers.0.mlp.experts.gate_up_proj" })
    #expect(fused["name"]?.string == "model.layers.0.block_sparse_moe.experts.gate_up_proj")
    #expect(fused["subclass"]?.string == "Int8Tensor")
    #expect(fused["inputs"]?.array?.count == 8)
    #expect(fused["inputs"]?.array?.first?.string == "model.layers.0.block_sparse_moe.experts.0.w1.weight")
    let text = try CLIRunner.run(["plan", mixtral, "--recipe", "int8-weight-only-experts"])
    #expect(text.standardOutput.contains("model.layers.0.mlp.experts.down_proj: fuses 4 input tensors: "))
  }

  /// The arguments of a conversion that runs long enough to be signalled or watched: a model of
  /// four shards, 16 × [512, 4096] bf16 weights, written into `scratch`, converted with 8 MiB on
  /// one worker.
  static func slowArguments(in scratch: URL, output: String) throws -> [String] {
    let model = scratch.appendingPathComponent("model").path
    try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
    let specs = (0..<16).map { TensorSpec(name: "layers.\($0).proj.weight", dtype: .bf16, shape: [512, 4096]) }
    var writer = try SafeTensorsWriter(
      path: model + "/model.safetensors", header: SafeTensorsHeader(metadata: nil, tensors: specs))
    let block = [UInt8]((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
    for _ in specs { try writer.write(block) }
    try writer.finish()
    try #"{"model_type": "llama"}"#.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
    return [
      "convert", model, output, "--recipe", "int8-weight-only", "--memory", "8MiB", "--jobs", "1", "--max-shard-size",
      "10MB",
    ]
  }

  @Test(arguments: [(Int32(15), Int32(143)), (Int32(2), Int32(130))])
  func aSignalStopsTheRunCleanlyAndTheSameCommandFinishesIt(signal: Int32, status: Int32) throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let arguments = try Self.slowArguments(in: scratch, output: output)
    // Signal the run while it is held right after its first shard is done, and let it go on
    // once it has said it is stopping.
    let run = try PausedRun(
      arguments + ["--progress", "json"], pausedAt: "done:model-00001-of-00004.safetensors", scratch: scratch)
    #expect(run.waitUntilPaused())
    kill(run.process.processIdentifier, signal)
    let stopping = run.readErrors(until: "stopping")
    let (exitStatus, rest) = run.release()
    let message = stopping + rest
    #expect(exitStatus == status, "\(message)")
    #expect(message.contains("Run the same command again"))
    // The last event says why the run ended.
    let last = try #require(run.standardOutput().split(separator: "\n").last)
    let event = try JSONParser.parse(String(last))
    #expect(event["event"]?.string == "error" && event["class"]?.string == "cancelled")
    let names = try FileManager.default.contentsOfDirectory(atPath: output)
    #expect(!names.contains("model.safetensors.index.json") && !names.contains("SHA256SUMS"))

    let resumed = try CLIRunner.run(arguments)
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try CLIRunner.run(["verify", output]).status == 0)
  }

  @Test func aSignalStopsTheCopyOfAHugeFileMidway() throws {
    let scratch = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let model = scratch.appendingPathComponent("model").path
    try FileManager.default.copyItem(atPath: Self.tinyLlama, toPath: model)
    // 64 MiB: eight pieces of the copy, so the first one after the signal stops it.
    #expect(FileManager.default.createFile(atPath: model + "/tokenizer.json", contents: Data(count: 64 << 20)))
    let output = scratch.appendingPathComponent("out").path
    let arguments = ["convert", model, output, "--recipe", "int8-weight-only", "--max-shard-size", "200KB"]
    let run = try PausedRun(arguments, pausedAt: "finalize-files", scratch: scratch)
    #expect(run.waitUntilPaused())
    kill(run.process.processIdentifier, SIGTERM)
    let stopping = run.readErrors(until: "stopping")
    let (status, rest) = run.release()
    #expect(status == 143, "\(stopping + rest)")
    let names = try FileManager.default.contentsOfDirectory(atPath: output)
    #expect(!names.contains("tokenizer.json") && !names.contains("SHA256SUMS"))
    #expect(!names.contains("model.safetensors.index.json"))

    let resumed = try CLIRunner.run(arguments)
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try CLIRunner.run(["verify", output]).status == 0)
  }
}
