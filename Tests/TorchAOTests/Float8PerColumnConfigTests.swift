import Foundation
import Quantization
import SafeTensors
import Testing
import TorchAO

/// The float8 expert recipes of gpt-oss and Llama 4 (experts stored `[E, K, N]`), whose weight
/// granularity is torchao `PerRow(1)`: config dictionaries, metadata entries and decoding,
/// against the golden manifests of `Tests/Fixtures/moe` (transformers 5.24 + torchao 0.18).
@Suite struct Float8PerColumnConfigTests {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/moe")
  static let expertsKey = #"re:.*\.experts\.(gate_up_proj|down_proj)"#

  /// The expert weights of each architecture.
  static let experts = [
    "gpt_oss": ["model.layers.0.mlp.experts.gate_up_proj", "model.layers.0.mlp.experts.down_proj"],
    "llama4_text": [
      "model.layers.0.feed_forward.experts.gate_up_proj", "model.layers.0.feed_forward.experts.down_proj",
    ],
  ]

  static let cases: [(arch: String, recipe: String, config: TorchAOConfig)] = ["gpt_oss", "llama4_text"].flatMap {
    [
      ($0, "float8-weight-only-experts", .float8WeightOnly(.perColumn)),
      ($0, "float8-dynamic-experts", .float8Dynamic(.perColumn)),
    ]
  }

  static func manifest(_ arch: String, _ recipe: String) throws -> JSONValue {
    try JSONParser.parse(Array(Data(contentsOf: directory.appendingPathComponent("\(arch)/\(recipe).json"))))
  }

  static func raw(_ arch: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(path: directory.appendingPathComponent("\(arch)/raw/model.safetensors").path)
  }

  @Test(arguments: cases)
  func theConfigDictAndMetadataAreTransformersAndTorchAOs(arch: String, recipe: String, config: TorchAOConfig) throws {
    let manifest = try Self.manifest(arch, recipe)
    let configs = try #require(manifest["quantization_config"]?["quant_type"]?["default"]?["_data"]?["fqn_to_config"])
    let expected = try #require(configs[Self.expertsKey])
    #expect(config.configDict == expected)
    #expect(try TorchAOConfig(configDict: expected) == config)
    // The default key keeps per-row weights (and per-row activations).
    let perRow = try TorchAOConfig(configDict: try #require(configs["_default"]))
    #expect(perRow == (recipe.contains("dynamic") ? .float8Dynamic(.perRow) : .float8WeightOnly(.perRow)))

    let raw = try Self.raw(arch)
    for name in try #require(Self.experts[arch]) {
      let tensor = try raw.tensor(named: name)
      #expect(tensor.dtype == .bf16)
      #expect(try config.decision(shape: tensor.shape, source: .bf16) == .quantize)
      let description = config.description(shape: tensor.shape, source: .bf16)
      #expect(description.json == manifest["metadata"]?[name], "\(arch) \(name)")
      let block = try #require(description[attribute: "block_size"]?.array).map { $0.uint64 }
      #expect(block == [1, UInt64(tensor.shape[1]), 1])
      // The layout matches the stored tensors' dtypes and shapes.
      let layout = try config.scheme(source: .bf16).outputLayout(shape: tensor.shape)
      for part in layout.parts {
        let key = FlattenedName.name(parameter: name, part: part.name.rawValue)
        let stored = try #require(manifest["tensors"]?[key], "\(key)")
        #expect(stored["dtype"]?.string == part.elementType.rawValue)
        #expect(stored["shape"]?.array?.map { $0.uint64.map(Int.init) } == part.shape.map { $0 })
      }
    }
  }

  @Test func theDynamicConfigsRulesStillApply() throws {
    let config = TorchAOConfig.float8Dynamic(.perColumn)
    // N or K not a multiple of 16: left plain, as `_fp8_mm_compat` does.
    #expect(try config.decision(shape: [4, 128, 40], source: .bf16) != .quantize)
    #expect(try config.decision(shape: [4, 24, 128], source: .bf16) != .quantize)
    // PerRow(1) is a PerRow: bfloat16 weights only.
    #expect(throws: TorchAOError.self) { try config.decision(shape: [4, 128, 128], source: .fp16) }
    // Per-column scales need 3-D weights.
    #expect(throws: TorchAOError.self) { try config.decision(shape: [128, 128], source: .bf16) }
    #expect(throws: TorchAOError.self) {
      try TorchAOConfig.float8WeightOnly(.perColumn).decision(shape: [128, 128], source: .bf16)
    }
    #expect(try TorchAOConfig.float8WeightOnly(.perColumn).decision(shape: [4, 128, 40], source: .fp32) == .quantize)
    // Other schemes refuse it.
    #expect(throws: TorchAOError.self) {
      try TorchAOConfig.int8WeightOnly(.perColumn).decision(shape: [4, 128, 128], source: .bf16)
    }
  }

  @Test func aCheckpointWithPerColumnExpertsDecodes() throws {
    let manifest = try Self.manifest("gpt_oss", "float8-weight-only-experts")
    let raw = try Self.raw("gpt_oss")
    let config = TorchAOConfig.float8WeightOnly(.perColumn)
    var specs: [TensorSpec] = []
    var data: [String: [UInt8]] = [:]
    var entries: [(name: String, description: TensorDescription)] = []
    var inputs: [String: [Float]] = [:]
    for name in try #require(Self.experts["gpt_oss"]) {
      let tensor = try raw.tensor(named: name)
      let bytes = try raw.bytes(of: tensor)
      inputs[name] = bytes.withUnsafeBytes { buffer in
        (0..<tensor.elementCount).map { FloatFormat.bf16.value(at: $0, in: buffer.baseAddress!) }
      }
      let scheme = config.scheme(source: .bf16)
      let parts = try bytes.withUnsafeBytes { try scheme.quantize($0, shape: tensor.shape) }
      for part in try scheme.outputLayout(shape: tensor.shape).parts {
        let key = FlattenedName.name(parameter: name, part: part.name.rawValue)
        specs.append(
          TensorSpec(name: key, dtype: try #require(DType(rawValue: part.elementType.rawValue)), shape: part.shape))
        data[key] = parts[part.name]
      }
      // The manifest's own entry, as torchao wrote it.
      let text = JSONWriter.string(try #require(manifest["metadata"]?[name]), style: .python)
      entries.append((name, try TensorDescription(decoding: text, tensor: name)))
    }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("perColumn-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let header = try SafeTensorsHeader(
      metadata: TorchAOMetadata(entries: entries).encoded(extra: ["format": "pt"]), tensors: specs)
    try SafeTensorsWriter.write(
      path: folder.appendingPathComponent("model.safetensors").path, header: header, data: data)

    let checkpoint = try Checkpoint(path: folder.path)
    #expect(TorchAOCheckpoint.problems(in: checkpoint).isEmpty)
    let decoded = try TorchAOCheckpoint(checkpoint)
    for name in try #require(Self.experts["gpt_oss"]) {
      let weight = try #require(decoded.weight(named: name))
      #expect(weight.summary.hasPrefix("Float8Tensor float8 e4m3 per-column, bfloat16"))
      let input = try #require(inputs[name])
      let values = try weight.dequantize()
      #expect(values.count == input.count)
      // Each value comes back within e4m3's half step of its column's scale range: |x − x̂| ≤
      // |x|/16 + amax/448·2⁻⁹, plus bf16 rounding of the result.
      let (rows, columns) = (weight.shape[1], weight.shape[2])
      var worst: Float = 0
      for expert in 0..<weight.shape[0] {
        for column in 0..<columns {
          let indices = (0..<rows).map { expert * rows * columns + $0 * columns + column }
          let amax = indices.map { abs(input[$0]) }.max()!
          for index in indices {
            let bound = abs(input[index]) / 16 + amax / 448 / 512 + abs(input[index]) / 128
            worst = max(worst, abs(values[index] - input[index]) / bound)
          }
        }
      }
      #expect(worst <= 1, "\(name)")
    }
  }
}
