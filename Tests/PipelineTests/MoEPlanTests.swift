import Foundation
import Pipeline
import Quantization
import SafeTensors
import Testing
import TorchAO

/// How a plan treats Mixture-of-Experts inputs beyond the goldens of ``MoEConversionTests``:
/// what it fuses, what it refuses and why, and what `verify` warns about.
@Suite struct MoEPlanTests {
  static let fixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/moe")

  /// A copy of the raw `arch` fixture in `scratch/in`, without the tensors `dropping`, with
  /// `config.json`'s `model_type` replaced by `modelType` when given.
  static func copy(_ arch: String, to scratch: URL, dropping: Set<String> = [], modelType: String? = nil) throws
    -> String
  {
    let source = fixtures.appendingPathComponent("\(arch)/raw")
    let target = scratch.appendingPathComponent("in")
    try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
    let file = try SafeTensorsFile(path: source.appendingPathComponent("model.safetensors").path)
    let kept = file.header.tensors.filter { !dropping.contains($0.name) }
    var data: [String: [UInt8]] = [:]
    for tensor in kept { data[tensor.name] = try file.bytes(of: tensor) }
    try SafeTensorsWriter.write(
      path: target.appendingPathComponent("model.safetensors").path,
      header: SafeTensorsHeader(
        metadata: file.header.metadata,
        tensors: kept.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }),
      data: data)
    var config = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
    if let modelType {
      config = config.replacingOccurrences(of: #""model_type": "\#(arch)""#, with: #""model_type": "\#(modelType)""#)
    }
    try config.write(to: target.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    return target.path
  }

  static func planError(_ input: String, recipe: String) -> PipelineError? {
    #expect(throws: PipelineError.self) { try ConversionHarness.plan(input, recipe: recipe) }
  }

  @Test func perExpertTensorsFuseInExpertOrderGateBeforeUp() throws {
    let (_, plan) = try ConversionHarness.plan(
      Self.fixtures.appendingPathComponent("mixtral/raw").path, recipe: "int8-weight-only-experts")
    let gateUp = try #require(plan.entries.first { $0.parameter == "model.layers.0.mlp.experts.gate_up_proj" })
    let prefix = "model.layers.0.block_sparse_moe.experts"
    #expect(
      gateUp.inputs.map(\.tensor.name)
        == (0..<4).flatMap { ["\(prefix).\($0).w1.weight", "\(prefix).\($0).w3.weight"] })
    #expect(gateUp.source.name == "\(prefix).gate_up_proj" && gateUp.source.shape == [4, 256, 128])
    #expect(
      gateUp.flattened.stored.map(\.spec.name)
        == ["zero_point", "qdata", "scale"].map { "\(prefix)._gate_up_proj_\($0)" })
    let down = try #require(plan.entries.first { $0.parameter == "model.layers.0.mlp.experts.down_proj" })
    #expect(down.inputs.map(\.tensor.name) == (0..<4).map { "\(prefix).\($0).w2.weight" })
    // The router is a Parameter: kept, under its file name, listed under its in-memory name.
    let router = try #require(plan.entries.first { $0.source.name == "model.layers.0.block_sparse_moe.gate.weight" })
    #expect(router.config == nil && router.parameter == "model.layers.0.mlp.gate.weight")
  }

  @Test func anUnknownMoEModelTypeIsRefusedNamingTheSupportedOnes() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = try Self.copy("qwen3_moe", to: scratch, modelType: "jamba")
    let error = Self.planError(input, recipe: "int8-weight-only")
    #expect(error?.code == .invalidInput)
    #expect(error?.message.contains("model_type 'jamba'") == true)
    #expect(error?.message.contains("mixtral") == true && error?.message.contains("qwen3_moe") == true)
  }

  @Test func aMissingExpertIsRefusedNamingIt() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = try Self.copy("qwen3_moe", to: scratch, dropping: ["model.layers.0.mlp.experts.2.up_proj.weight"])
    let error = Self.planError(input, recipe: "int8-weight-only")
    #expect(error?.tensor == "model.layers.0.mlp.experts.2")
    #expect(error?.message.contains("lacks one of its gate_proj/up_proj/down_proj weights") == true)
  }

  @Test func intAndInt4ExpertRecipesAreRefusedOnTransposedExperts() throws {
    for recipe in ["int8-weight-only-experts", "int4-weight-only-experts"] {
      let error = Self.planError(Self.fixtures.appendingPathComponent("gpt_oss/raw").path, recipe: recipe)
      #expect(error?.tensor?.hasPrefix("model.layers.0.mlp.experts.") == true, "\(recipe)")
      #expect(error?.message.contains("stored [E, in, out]") == true, "\(recipe)")
    }
  }

  @Test func aRuleReachingTransposedExpertsAndOtherWeightsIsRefused() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let recipe = scratch.appendingPathComponent("recipe.yaml")
    try Data(
      """
      rules:
        - match: "re:.*\\\\.(experts\\\\.gate_up_proj|self_attn\\\\.q_proj\\\\.weight)"
          quantize: { scheme: float8-weight-only }
      """.utf8
    ).write(to: recipe)
    let error = Self.planError(Self.fixtures.appendingPathComponent("gpt_oss/raw").path, recipe: recipe.path)
    #expect(error?.message.contains("split it in two") == true)
  }

  @Test func perTensorScalesOnFusedExpertsAreRefused() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let recipe = scratch.appendingPathComponent("recipe.yaml")
    try Data(
      """
      rules:
        - match: "re:.*\\\\.experts\\\\.(gate_up_proj|down_proj)"
          quantize: { scheme: float8-weight-only, granularity: per-tensor }
      """.utf8
    ).write(to: recipe)
    let error = Self.planError(Self.fixtures.appendingPathComponent("qwen3_moe/raw").path, recipe: recipe.path)
    #expect(error?.message.contains("one scale to all 4 experts") == true)
  }

  @Test func twoQuantizedParametersWhoseNamesCollideInTorchAOsLoaderAreRefused() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let path = scratch.appendingPathComponent("model.safetensors").path
    let names = ["model.mlp.gate_up_proj", "model.mlp.gate_up_proj_bias"]
    try SafeTensorsWriter.write(
      path: path,
      header: SafeTensorsHeader(
        metadata: nil, tensors: names.map { TensorSpec(name: $0, dtype: .bf16, shape: [16, 32]) }),
      data: Dictionary(uniqueKeysWithValues: names.map { ($0, [UInt8](repeating: 0x3F, count: 1024)) }))
    let recipe = scratch.appendingPathComponent("recipe.yaml")
    try Data("rules:\n  - match: \"model.mlp\"\n    quantize: { scheme: int8-weight-only }\n".utf8).write(
      to: recipe)
    let error = Self.planError(path, recipe: recipe.path)
    #expect(error?.tensor == "model.mlp.gate_up_proj_bias")
    #expect(error?.message.contains("'model.mlp.gate_up_proj' and 'model.mlp.gate_up_proj_bias'") == true)
  }

  /// A one-file torchao checkpoint in `directory` whose metadata lists `names` as int8
  /// weights, with `config.json` of `modelType`.
  static func torchAOModel(in directory: URL, modelType: String, names: [String]) throws -> String {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let config = TorchAOConfig.int8WeightOnly(.perRow)
    let values = (0..<512).flatMap { index -> [UInt8] in [0, UInt8(0x3C + index % 3)] }
    var specs: [TensorSpec] = []
    var data: [String: [UInt8]] = [:]
    var described: [(name: String, description: TensorDescription)] = []
    for name in names {
      let flattened = try config.flattenedEntry(name: name, shape: [16, 32], source: .bf16)
      let parts = try values.withUnsafeBytes { try config.scheme(source: .bf16).quantize($0, shape: [16, 32]) }
      for stored in flattened.stored {
        specs.append(stored.spec)
        data[stored.spec.name] = parts[stored.part!]
      }
      described.append((name, flattened.description))
    }
    let metadata = TorchAOMetadata.encoded(entries: described, extra: ["format": "pt"])
    try SafeTensorsWriter.write(
      path: directory.appendingPathComponent("model.safetensors").path,
      header: SafeTensorsHeader(metadata: metadata, tensors: specs), data: data)
    try Data(#"{"model_type": "\#(modelType)"}"#.utf8).write(to: directory.appendingPathComponent("config.json"))
    return directory.path
  }

  @Test func verifyWarnsAboutExpertsStoredPerExpertAndMetadataUnderFileNames() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let perExpert = try Self.torchAOModel(
      in: scratch.appendingPathComponent("per-expert"), modelType: "qwen3_moe",
      names: ["model.layers.0.mlp.experts.0.gate_proj.weight", "model.layers.0.self_attn.q_proj.weight"])
    let first = try TorchAOCheckpoint(Checkpoint(path: perExpert)).moeWarnings(ofModelAt: perExpert)
    #expect(
      first.count == 1 && first[0].contains("stored per expert ('model.layers.0.mlp.experts.0.gate_proj.weight')"))

    let fileNames = try Self.torchAOModel(
      in: scratch.appendingPathComponent("file-names"), modelType: "mixtral",
      names: ["model.layers.0.block_sparse_moe.gate.weight"])
    let checkpoint = try Checkpoint(path: fileNames)
    let second = try TorchAOCheckpoint(checkpoint, storedName: TorchAOCheckpoint.storedNames(ofModelAt: fileNames))
      .moeWarnings(ofModelAt: fileNames)
    #expect(second.count == 1 && second[0].contains("'model.layers.0.mlp.gate.weight'"))
  }

  @Test(arguments: ["mixtral", "qwen2_moe", "deepseek_v3"])
  func whatConvertWritesVerifiesWithoutWarnings(arch: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    try await ConversionHarness.convert(
      Self.fixtures.appendingPathComponent("\(arch)/raw").path, to: output, recipe: "float8-weight-only-experts")
    let checkpoint = try Checkpoint(path: output)
    let storedName = TorchAOCheckpoint.storedNames(ofModelAt: output)
    #expect(TorchAOCheckpoint.problems(in: checkpoint, storedName: storedName).isEmpty)
    #expect(try TorchAOCheckpoint(checkpoint, storedName: storedName).moeWarnings(ofModelAt: output).isEmpty)
  }
}
