import Foundation
import Pipeline
import Quantization
import SafeTensors
import Testing
import TorchAO

/// Every torchao golden fixture (Tests/Fixtures/torchao) through the whole conversion, as
/// `safeshard convert` runs it: a recipe file written from the fixture's `quantization_config`
/// quantizes exactly the tensors torchao quantized, ``Conversion`` converts the fixture's
/// `input.safetensors` (in a model folder with a `config.json`), and every stored tensor's dtype,
/// shape and bytes, every `__metadata__` entry and the written `quantization_config` are
/// torchao's.
///
/// Two things cannot match and are checked as what they should be instead: safeshard adds
/// `"format": "pt"` to the metadata, as transformers' `save_pretrained` does; and `tensor_names`
/// lists the same entries in the input file's order, because a safetensors file keeps its
/// tensors sorted and so does not record the state-dict order torchao lists them in.
@Suite struct TorchAOGoldenConversionTests {
  /// How the conversion is run.
  enum Run: String, CaseIterable, Sendable {
    /// One shard in the reference writer's order, as torchao's file is: the data section must
    /// be torchao's byte for byte.
    case canonical
    /// Input order, shards of at most 2 KiB, a 96 KiB budget, three jobs, a commit every KiB.
    case sharded
  }

  static let fixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/torchao")

  /// Every fixture directory, sorted.
  static let names: [String] =
    ((try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? [])
    .filter { FileManager.default.fileExists(atPath: fixtures.appendingPathComponent("\($0)/config.json").path) }
    .sorted()

  @Test func everyFixtureIsHere() {
    #expect(Self.names.count == 49)
  }

  @Test(arguments: names, Run.allCases)
  func convertingTheInputGivesTorchAOsCheckpoint(fixture: String, run: Run) async throws {
    let folder = Self.fixtures.appendingPathComponent(fixture)
    let json = try JSONParser.parse(Array(Data(contentsOf: folder.appendingPathComponent("config.json"))))
    let quantizationConfig = try #require(json["transformers_quantization_config"])
    let config = try TorchAOConfig(configDict: try #require(quantizationConfig["quant_type"]?["default"]))
    let outcome = try #require(json["outcome"]?.members)

    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = scratch.appendingPathComponent("input")
    try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      at: folder.appendingPathComponent("input.safetensors"), to: input.appendingPathComponent("model.safetensors"))
    try Data(#"{"model_type": "torchao-fixture"}"#.utf8).write(to: input.appendingPathComponent("config.json"))

    // The recipe transformers' quantization_config amounts to: the config for every nn.Linear
    // weight, and rules for the parameters the fixture quantized through FqnToConfig.
    let fqns = try #require(json["param_fqns_quantized_via_FqnToConfig"]?.array).compactMap(\.string)
    let quantize = config.recipeQuantize
    let rules = fqns.map { "  - match: \"\($0)\"\n    quantize: \(quantize)\n" }.joined()
    let recipePath = scratch.appendingPathComponent("recipe.yaml").path
    try Data("name: \(fixture)\nquantize: \(quantize)\n\(rules.isEmpty ? "" : "rules:\n\(rules)")".utf8)
      .write(to: URL(fileURLWithPath: recipePath))
    let recipe = try Recipe.load(recipePath)
    #expect(recipe.defaultConfig == config, "the recipe language says \(quantize) differently")

    var options = ConversionOptions()
    switch run {
    case .canonical:
      options.layout = .canonical
    case .sharded:
      options.maxShardSize = 2 << 10
      options.memory = 96 << 10
      options.jobs = 3
      options.commitInterval = 1 << 10
    }
    let checkpoint = try Checkpoint(path: input.path)
    let plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options)
    #expect(Set(plan.entries.map(\.source.name)) == Set(outcome.map(\.key)))
    for entry in plan.entries {
      let quantized = outcome.first { $0.key == entry.source.name }?.value != .string("Tensor")
      #expect((entry.config != nil) == quantized, "\(entry.source.name): \(entry.reason ?? "quantized")")
    }

    let output = scratch.appendingPathComponent("output").path
    let conversion = Conversion(
      input: input.path, checkpoint: checkpoint, plan: plan, output: output, recipeReference: recipePath)
    guard case .converted(let report) = try await conversion.run(restart: false, progress: { _ in }) else {
      Issue.record("the output was reported complete before the run")
      return
    }
    #expect(report.finalized)

    let expected = try SafeTensorsFile(path: folder.appendingPathComponent("expected.safetensors").path)
    let result = try Checkpoint(path: output)
    #expect(run == .canonical ? result.files.count == 1 : result.files.count > 1)
    let stored = Dictionary(uniqueKeysWithValues: result.tensors.map { ($0.tensor.name, $0) })
    #expect(Set(stored.keys) == Set(expected.header.tensors.map(\.name)))
    for tensor in expected.header.tensors {
      guard let (info, file) = stored[tensor.name] else { continue }
      #expect(info.dtype == tensor.dtype, "\(tensor.name)")
      #expect(info.shape == tensor.shape, "\(tensor.name)")
      if run == .canonical { #expect(info.dataOffsets == tensor.dataOffsets, "\(tensor.name)") }
      let difference = Self.difference(try file.bytes(of: info), torchao: try expected.bytes(of: tensor))
      #expect(difference == nil, "\(tensor.name) differs from torchao: \(difference ?? "")")
    }
    if run == .canonical, let file = result.files.first {
      let written = try Data(contentsOf: URL(fileURLWithPath: file.path)).dropFirst(file.dataStart)
      let torchao = try Data(contentsOf: URL(fileURLWithPath: expected.path)).dropFirst(expected.dataStart)
      #expect(written == torchao, "the data section is not torchao's")
    }

    let torchaoMetadata = try #require(expected.header.metadata)
    for file in result.files {
      try Self.checkMetadata(try #require(file.header.metadata), against: torchaoMetadata, file: file.path)
    }
    let writtenConfig = try JSONParser.parse(
      Array(Data(contentsOf: URL(fileURLWithPath: output).appendingPathComponent("config.json"))))
    // The rules make the recipe torchao's FqnToConfig, and config.json says so.
    let expectedConfig =
      fqns.isEmpty
      ? quantizationConfig
      : TorchAOConfig.transformersQuantizationConfig(
        quantType: TorchAOConfig.fqnToConfigDict([("_default", config)] + fqns.map { ($0, config) }))
    #expect(writtenConfig["quantization_config"] == expectedConfig)
    #expect(writtenConfig["model_type"] == .string("torchao-fixture"))
  }

  /// Checks one shard's `__metadata__` against torchao's: the same keys plus `"format": "pt"`,
  /// every entry equal as parsed JSON, `tensor_names` the same names in any order.
  static func checkMetadata(_ metadata: [String: String], against torchao: [String: String], file: String) throws {
    #expect(Set(metadata.keys) == Set(torchao.keys).union(["format"]), "\(file)")
    #expect(metadata["format"] == "pt", "\(file)")
    for (key, value) in torchao {
      guard let written = metadata[key] else { continue }
      let mine = try JSONParser.parse(written)
      let theirs = try JSONParser.parse(value)
      if key == "tensor_names" {
        #expect(mine.array?.count == theirs.array?.count, "\(file): tensor_names")
        #expect(Set(mine.array ?? []) == Set(theirs.array ?? []), "\(file): tensor_names")
      } else {
        #expect(mine == theirs, "\(file): metadata entry \(key) is \(written), torchao wrote \(value)")
      }
    }
  }

  /// `nil` when `bytes` are torchao's; otherwise the sizes, or how many bytes differ and the
  /// first few offsets with both values.
  static func difference(_ bytes: [UInt8], torchao: [UInt8]) -> String? {
    guard bytes.count == torchao.count else { return "\(bytes.count) bytes, torchao has \(torchao.count)" }
    let offsets = bytes.indices.filter { bytes[$0] != torchao[$0] }
    guard !offsets.isEmpty else { return nil }
    let first = offsets.prefix(8).map { "byte \($0): \(bytes[$0]) (torchao \(torchao[$0]))" }
    return "\(offsets.count) of \(bytes.count) bytes differ; " + first.joined(separator: ", ")
  }
}

extension TorchAOConfig {
  /// The recipe's `quantize` mapping for this config, in YAML flow style, every parameter
  /// written out.
  fileprivate var recipeQuantize: String {
    switch self {
    case .int8WeightOnly(let granularity):
      "{scheme: int8-weight-only, granularity: \(granularity.recipeName)}"
    case .int8Dynamic(let granularity, let activationMapping, let reduceRange):
      "{scheme: int8-dynamic, granularity: \(granularity.recipeName), "
        + "activation-mapping: \(activationMapping.recipeName), reduce-range: \(reduceRange)}"
    case .float8WeightOnly(let granularity):
      "{scheme: float8-weight-only, granularity: \(granularity.recipeName)}"
    case .float8Dynamic(let granularity):
      "{scheme: float8-dynamic, granularity: \(granularity.recipeName)}"
    case .intxWeightOnly(let bits, let granularity, let mapping, let scaleFormat):
      Self.intx("intx-weight-only", bits, granularity, mapping, scaleFormat)
    case .int8DynamicIntx(let bits, let granularity, let mapping, let scaleFormat):
      Self.intx("int8-dynamic-intx", bits, granularity, mapping, scaleFormat)
    case .int4WeightOnly(let groupSize):
      "{scheme: int4-weight-only, group-size: \(groupSize)}"
    case .mx(let element, let scaling):
      "{scheme: mx, element: \(element == .float8E4M3 ? "fp8" : "fp4"), scaling: \(scaling.rawValue.lowercased())}"
    case .nvfp4WeightOnly(let perTensorScale):
      "{scheme: nvfp4, per-tensor-scale: \(perTensorScale)}"
    case .nvfp4Dynamic(let perTensorScale):
      "{scheme: nvfp4-dynamic, per-tensor-scale: \(perTensorScale)}"
    }
  }

  private static func intx(
    _ scheme: String, _ bits: Int, _ granularity: Granularity, _ mapping: IntxMapping, _ scaleFormat: FloatFormat?
  ) -> String {
    let scale = scaleFormat.map { ", scale-dtype: \($0.torchName)" } ?? ""
    return "{scheme: \(scheme), bits: \(bits), granularity: \(granularity.recipeName), "
      + "mapping: \(mapping.recipeName)\(scale)}"
  }
}

extension Granularity {
  /// The recipe's name of the granularity.
  fileprivate var recipeName: String {
    switch self {
    case .perRow: "per-row"
    case .perTensor: "per-tensor"
    case .perColumn: "per-column"
    case .perGroup(let size): "per-group:\(size)"
    }
  }
}

extension IntxMapping {
  /// The recipe's name of the mapping.
  fileprivate var recipeName: String {
    switch self {
    case .symmetric: "symmetric"
    case .asymmetric: "asymmetric"
    case .symmetricNoClippingError: "symmetric-no-clipping-error"
    }
  }
}
