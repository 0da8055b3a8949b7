import Foundation
import Pipeline
import SafeTensors
import Testing
import TorchAO

@Suite struct ConverterTests {
  @Test func aShardedModelConvertsIntoShardsWithAnIndexThatVerify() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let report = try await ConversionHarness.convert(
      ConversionHarness.tinyLlama, to: output, recipe: "int8-weight-only"
    ) {
      $0.maxShardSize = 150_000
    }
    let count = report.shards.count
    #expect(count > 2)
    #expect(report.shards.first == "model-00001-of-0000\(count).safetensors")
    let files = try ConversionHarness.contents(of: output)
    #expect(
      Set(files.keys)
        == Set(report.shards + ["model.safetensors.index.json", "config.json", "generation_config.json", "SHA256SUMS"]))
    #expect(Checkpoint.problems(at: output).isEmpty)
    #expect(TorchAOCheckpoint.problems(in: try Checkpoint(path: output)).isEmpty)
    #expect(try ConversionHarness.checkAgainstInput(output, input: ConversionHarness.tinyLlama) == 14)
    // Every shard carries the full metadata, with "format": "pt".
    let checkpoint = try Checkpoint(path: output)
    let metadata = try #require(checkpoint.files.first?.header.metadata)
    #expect(metadata["format"] == "pt")
    #expect(checkpoint.files.allSatisfy { $0.header.metadata == metadata })
    // The index: total_size is the sum of stored tensor bytes; total_parameters the model's.
    let index = try JSONParser.parse(Array(files["model.safetensors.index.json"]!))
    #expect(
      index["metadata"]?["total_size"]?.uint64 == UInt64(checkpoint.tensors.reduce(0) { $0 + $1.tensor.byteCount }))
    #expect(index["metadata"]?["total_parameters"]?.uint64 == 426_624)
    #expect(
      files["generation_config.json"]
        == (try Data(
          contentsOf: URL(fileURLWithPath: ConversionHarness.tinyLlama).appendingPathComponent("generation_config.json")
        )))
    // No state is left behind.
    #expect(!FileManager.default.fileExists(atPath: output + "/.safeshard"))
  }

  /// Every recipe that quantizes (`reshard` and `dequantize` copy an unquantized model).
  @Test(arguments: Recipe.builtinNames.filter { !["reshard", "dequantize"].contains($0) })
  func everyRecipeConvertsTheShippedModelToWhatTheSchemeGivesInMemory(recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: output, recipe: recipe) {
      $0.maxShardSize = 300_000
    }
    #expect(Checkpoint.problems(at: output).isEmpty)
    // The 14 Linear weights of the two layers; embeddings, lm_head and norms stay plain.
    #expect(try ConversionHarness.checkAgainstInput(output, input: ConversionHarness.tinyLlama) == 14)
    let config = try JSONParser.parse(
      Array(Data(contentsOf: URL(fileURLWithPath: output).appendingPathComponent("config.json"))))
    let written = try #require(config["quantization_config"]?["quant_type"]?["default"])
    let loaded = try Recipe.load(recipe)
    if loaded.rules.isEmpty {
      #expect(written == loaded.defaultConfig?.configDict)
    } else {
      // The -experts recipes: torchao's FqnToConfig of `_default` and the experts' pattern.
      #expect(written["_type"] == .string("FqnToConfig"))
      #expect(written["_data"]?["fqn_to_config"]?["_default"] == loaded.defaultConfig?.configDict)
    }
  }

  @Test func aTorchAOCheckpointIsRequantizedFromItsDequantizedValuesAndResharedAsItIs() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let once = scratch.appendingPathComponent("once").path
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: once, recipe: "int8-weight-only")
    // Opened for a recipe that quantizes, its 14 Int8Tensor weights read as their dequantized
    // bfloat16 values, which the recipe quantizes again.
    let (input, plan) = try ConversionHarness.plan(once, recipe: "float8-weight-only")
    #expect(input.format == "torchao" && input.isDequantized)
    #expect(plan.entries.filter { $0.config != nil }.count == 14)
    // Opened as it is stored, its Linear weights are parts (`_weight_qdata`): a recipe would find
    // nothing to quantize and write an unchanged copy, or break what it quantizes (here the
    // embedding, by a rule): refused.
    let stored = #expect(throws: PipelineError.self) {
      try ConversionPlan(
        checkpoint: Checkpoint(path: once), recipe: Recipe.load("float8-weight-only"), options: ConversionOptions())
    }
    #expect(stored?.message.contains("already a torchao checkpoint") == true)
    #expect(stored?.code == .invalidInput && stored?.path == once)
    let recipe = try Recipe(
      yaml: """
        name: embeddings
        quantize: { scheme: int8-weight-only }
        rules:
          - match: "*.embed_tokens.weight"
            quantize: { scheme: int8-weight-only }
        """, file: "embeddings.yaml")
    let error = #expect(throws: PipelineError.self) {
      try ConversionPlan(checkpoint: Checkpoint(path: once), recipe: recipe, options: ConversionOptions())
    }
    #expect(error?.message.contains("already a torchao checkpoint") == true)
    // Re-sharding it keeps every tensor and its torchao metadata.
    let resharded = scratch.appendingPathComponent("again").path
    try await ConversionHarness.convert(once, to: resharded, recipe: "reshard") { $0.maxShardSize = 200_000 }
    #expect(try TorchAOCheckpoint(Checkpoint(path: resharded)).weights.count == 14)
    // Its SHA256SUMS lists the new files, not the input's SHA256SUMS.
    let sums = try ChecksumList(directory: resharded)
    #expect(sums.digests[ChecksumList.fileName] == nil)
    #expect(sums.mismatches(in: resharded).isEmpty && sums.unlisted(in: resharded).isEmpty)
  }

  @Test func aRecipeMixingConfigsWritesTorchAOsFqnToConfig() throws {
    let recipe = try Recipe(
      yaml: """
        name: mixed
        quantize: { scheme: int8-weight-only }
        rules:
          - match: "*.mlp.*"
            quantize: { scheme: float8-weight-only }
          - match: "model.layers.0.self_attn.q_proj.weight"
            skip: true
        """, file: "mixed.yaml")
    let checkpoint = try Checkpoint(path: ConversionHarness.tinyLlama)
    let plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: ConversionOptions())
    let configs = Dictionary(uniqueKeysWithValues: plan.entries.map { ($0.parameter, $0.config) })
    #expect(configs["model.layers.1.mlp.up_proj.weight"] == .float8WeightOnly(.perRow))
    #expect(configs["model.layers.1.self_attn.q_proj.weight"] == .int8WeightOnly(.perRow))
    #expect(configs["model.layers.0.self_attn.q_proj.weight"] == .some(nil))
    // The glob is written as the regex it is; keys sorted; both names of the map.
    let map: [(String, TorchAOConfig?)] = [
      ("_default", .int8WeightOnly(.perRow)), ("model.layers.0.self_attn.q_proj.weight", nil),
      (#"re:.*\.mlp\..*"#, .float8WeightOnly(.perRow)),
    ]
    let members = map.map { JSONMember($0.0, $0.1?.configDict ?? .null) }
    let expected = JSONValue.object([
      JSONMember(
        "_data",
        .object([JSONMember("fqn_to_config", .object(members)), JSONMember("module_fqn_to_config", .object(members))])),
      JSONMember("_type", .string("FqnToConfig")), JSONMember("_version", .number("1")),
    ])
    #expect(plan.quantizationConfig?["quant_type"]?["default"] == expected)
  }

  @Test func aTensorTheRecipeRefusesKeepsTheRecipesErrorAsTheCause() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let path = scratch.appendingPathComponent("model.safetensors").path
    let header = try SafeTensorsHeader(
      metadata: nil, tensors: [TensorSpec(name: "layer.proj.weight", dtype: .f16, shape: [32, 32])])
    try SafeTensorsWriter.write(
      path: path, header: header, data: ["layer.proj.weight": [UInt8](repeating: 0x3C, count: 2048)])
    let error = #expect(throws: PipelineError.self) {
      try ConversionHarness.plan(path, recipe: "float8-dynamic")
    }
    #expect(error?.code == .invalidInput)
    #expect(error?.path == path)
    #expect(error?.tensor == "layer.proj.weight")
    let cause = error?.cause as? RecipeError
    #expect(cause?.code == .refused)
    #expect(cause?.tensor == "layer.proj.weight")
  }

  @Test func aChecksumOfAMissingFileNamesTheSystemCallAndItsErrno() throws {
    let path = "/nonexistent-\(UUID().uuidString)/model.safetensors"
    let error = #expect(throws: PipelineError.self) { try ChecksumList.digest(ofFile: path) }
    #expect(error?.code == .io)
    #expect(error?.path == path)
    #expect(error?.errno == ENOENT)
    #expect((error?.cause as? PipelineError.SystemCallError)?.call == "open")
  }

  @Test func theSameConversionTwiceGivesTheSameBytes() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let first = scratch.appendingPathComponent("a").path
    let second = scratch.appendingPathComponent("b").path
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: first, recipe: "float8-dynamic") {
      $0.maxShardSize = 200_000
    }
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: second, recipe: "float8-dynamic") {
      $0.maxShardSize = 200_000
      $0.jobs = 1
    }
    #expect(try ConversionHarness.contents(of: first) == ConversionHarness.contents(of: second))
  }

  @Test func aTensorLargerThanTheBudgetIsConvertedInChunksToTheSameBytes() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let roomy = scratch.appendingPathComponent("roomy").path
    let tight = scratch.appendingPathComponent("tight").path
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: roomy, recipe: "int8-weight-only")
    // The embedding and lm_head are 131,072 bytes each: larger than the whole budget.
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: tight, recipe: "int8-weight-only") {
      $0.memory = 96 << 10
    }
    #expect(try ConversionHarness.contents(of: roomy) == ConversionHarness.contents(of: tight))
  }

  @Test(arguments: ["none", "lz4"])
  func forcedSpillingGivesTheSameBytesAsAnUnspilledRun(compression: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let roomy = scratch.appendingPathComponent("roomy").path
    let tight = scratch.appendingPathComponent("tight").path
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: roomy, recipe: "int8-weight-only") {
      $0.layout = .canonical
    }
    let report = try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: tight, recipe: "int8-weight-only")
    {
      $0.layout = .canonical
      $0.memory = 160 << 10
      $0.spillCompression = SpillCompression(rawValue: compression)!
    }
    #expect(report.spilledBytes > 0)
    #expect(try ConversionHarness.contents(of: roomy) == ConversionHarness.contents(of: tight))
  }

  @Test func reshardCopiesEveryTensorUnchanged() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let report = try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: output, recipe: "reshard") {
      $0.maxShardSize = 300_000
    }
    #expect(report.shards.count > 2)
    let source = try Checkpoint(path: ConversionHarness.tinyLlama)
    let result = try Checkpoint(path: output)
    for (tensor, file) in source.tensors {
      let copy = try result.file(holding: tensor.name)
      #expect(try copy.bytes(of: copy.tensor(named: tensor.name)) == file.bytes(of: tensor))
    }
    let config = try Data(contentsOf: URL(fileURLWithPath: output).appendingPathComponent("config.json"))
    #expect(
      config
        == (try Data(
          contentsOf: URL(fileURLWithPath: ConversionHarness.tinyLlama).appendingPathComponent("config.json"))))
  }

  @Test func aCancelledRunLeavesNothingThatLooksComplete() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let task = Task {
      try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: output, recipe: "int8-weight-only") {
        $0.maxShardSize = 100_000
        $0.memory = 96 << 10
        $0.jobs = 1
      }
    }
    task.cancel()
    let result = await task.result
    let error = try #require(result.failure as? PipelineError)
    #expect(error.code == .cancelled)
    let names = try FileManager.default.contentsOfDirectory(atPath: output)
    #expect(!names.contains("model.safetensors.index.json") && !names.contains("model.safetensors"))
    #expect(!names.contains("SHA256SUMS"))
    #expect(names.contains(".safeshard"))
    #expect(OutputDirectory(path: output).status() == .unfinished)
  }
}

extension Result {
  var failure: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}
