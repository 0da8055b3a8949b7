import Foundation
import Pipeline
import Quantization
import SafeTensors
import Testing
import TorchAO

/// torchao safetensors checkpoints as input, read as their dequantized values by the recipes
/// that quantize and by `dequantize`, copied as they are by `reshard`.
///
/// Two sets of fixtures, both made by torchao 0.18: the model directories of
/// Tests/Fixtures/quantized-input/torchao-* (transformers' `save_pretrained` of a tiny Llama
/// quantized with `TorchAoConfig`, one per subclass, each with its bfloat16 twin), and the
/// per-tensor cases of Tests/Fixtures/torchao (every decoded subclass and granularity, bf16, fp16
/// and fp32, 3-D experts) with torchao's `dequantize()` values in Tests/Fixtures/dequantized.
@Suite struct TorchAOInputTests {
  static let fixtures = QuantizedInputTests.fixtures
  static let inputs = [
    "torchao-int8wo", "torchao-int8dq", "torchao-fp8wo", "torchao-fp8dq", "torchao-intx4", "torchao-int4",
    "torchao-mxfp8", "torchao-nvfp4",
  ]
  static let torchAOFixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/torchao")
  static var torchAOFixtureNames: [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: torchAOFixtures.path)) ?? []).filter { !$0.contains(".") }
      .sorted()
  }

  /// Each subclass's model directory: `dequantize` writes the twin bit for bit (the parts gone,
  /// the torchao metadata gone), and its config.json without `quantization_config`.
  @Test(arguments: inputs)
  func dequantizeWritesTheTwin(name: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/\(name)"
    let output = try await ConversionHarness.converted(input, recipe: "dequantize", in: scratch)
    try ConversionHarness.expectSame(output, "\(input)-bf16")
    #expect(try QuantizedInputTests.config(input)["quantization_config"]?["quant_method"]?.string == "torchao")
    #expect(try QuantizedInputTests.config(output) == QuantizedInputTests.config("\(input)-bf16"))
  }

  /// A recipe on the torchao input equals the recipe on its twin: tensors, metadata and the
  /// `quantization_config` that replaces the input's.
  @Test(arguments: inputs, ["int8-weight-only", "float8-dynamic"])
  func aRecipeOnTheTorchAOInputEqualsTheRecipeOnTheTwin(name: String, recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/\(name)"
    let output = try await ConversionHarness.converted(input, recipe: recipe, in: scratch)
    let expected = try await ConversionHarness.converted("\(input)-bf16", recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
    let config = try QuantizedInputTests.config(output)
    #expect(config == (try QuantizedInputTests.config(expected)))
  }

  /// Under a 1 MiB budget the weights are read in chunks, each dequantized as it is read: the
  /// same output.
  @Test(arguments: ["torchao-mxfp8", "torchao-int4"], ["dequantize", "int8-weight-only"])
  func aSmallBudgetReadsTheWeightsInChunksToTheSameOutput(name: String, recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/\(name)"
    let output = scratch.appendingPathComponent("out").path
    try await ConversionHarness.convert(input, to: output, recipe: recipe) { $0.memory = 1 << 20 }
    let expected = try await ConversionHarness.converted("\(input)-bf16", recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
  }

  /// Every quantized weight of every torchao fixture (Int8, Float8, intx, Int4, MXFP8, MXFP4,
  /// NVFP4; per row, per group, per tensor, with and without NVFP4's per-tensor scale; bf16, fp16
  /// and fp32; 2-D and 3-D) reads as torchao's `dequantize()` values in the weight's dtype, bit
  /// for bit, whole and in ranges that start and end inside rows, elements and 128-row tiles.
  @Test(arguments: torchAOFixtureNames)
  func everyWeightReadsAsTorchAOsDequantizedValues(fixture: String) throws {
    let input = try Checkpoint.input(
      at: Self.torchAOFixtures.appendingPathComponent("\(fixture)/expected.safetensors").path, dequantizing: true)
    #expect(input.format == "torchao" && input.isDequantized)
    #expect(!TorchAOCheckpoint.hasTorchAOMetadata(input))
    let golden = try SafeTensorsFile(
      path: Self.torchAOFixtures.deletingLastPathComponent().appendingPathComponent(
        "dequantized/\(fixture).safetensors"
      )
      .path)
    #expect(!golden.header.tensors.isEmpty)
    for expected in golden.header.tensors {
      let (tensor, file) = try input.tensor(named: expected.name)
      #expect(tensor.dtype == expected.dtype && tensor.shape == expected.shape, "\(expected.name)")
      let want = try golden.bytes(of: expected)
      #expect(try file.bytes(of: tensor) == want, "\(fixture) \(expected.name)")
      // Pieces of 3 rows and 5 bytes, one after another.
      let step = 3 * tensor.shape.last! * tensor.dtype.bitSize / 8 + 5
      var pieces: [UInt8] = []
      for offset in stride(from: 0, to: want.count, by: step) {
        var bytes = [UInt8](repeating: 0, count: min(step, want.count - offset))
        try bytes.withUnsafeMutableBytes { try file.read(tensor, at: offset, into: $0) }
        pieces += bytes
      }
      #expect(pieces == want, "\(fixture) \(expected.name) in pieces")
      #expect(file.readingNote(of: expected.name)?.hasPrefix("dequantized from torchao ") == true)
    }
    // Plain tensors (c.bias, and weights torchao left unquantized) are copied.
    let stored = try Checkpoint(
      path: Self.torchAOFixtures.appendingPathComponent("\(fixture)/expected.safetensors").path)
    let bias = try input.tensor(named: "c.bias")
    #expect(
      try bias.file.bytes(of: bias.tensor)
        == stored.file(holding: "c.bias").bytes(of: stored.tensor(named: "c.bias").tensor))
    #expect(bias.file.readingNote(of: "c.bias") == nil)
  }

  /// What `plan` shows: the format, and how each weight is read.
  @Test func theFormatAndTheDequantizedWeightsAreNamed() throws {
    let (input, plan) = try ConversionHarness.plan("\(Self.fixtures)/torchao-int8wo", recipe: "float8-dynamic")
    #expect(input.format == "torchao")
    #expect(input.tensorCount == 12)
    let name = "model.layers.0.self_attn.q_proj.weight"
    #expect(
      try input.file(holding: name).readingNote(of: name)
        == "dequantized from torchao Int8Tensor int8 per-row, bfloat16 [32, 32]: model.layers.0.self_attn.q_proj."
        + "_weight_zero_point I8 [32, 1], model.layers.0.self_attn.q_proj._weight_qdata I8 [32, 32], "
        + "model.layers.0.self_attn.q_proj._weight_scale F32 [32, 1]")
    #expect(plan.entries.filter { $0.config != nil }.count == 7)
    #expect(input.files[0].header.metadata == ["format": "pt"])
  }

  /// `reshard` copies the torchao input as it is: parts, metadata and config.json.
  @Test func reshardKeepsTheTorchAOInputAsItIs() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/torchao-nvfp4"
    let output = try await ConversionHarness.converted(input, recipe: "reshard", in: scratch)
    try ConversionHarness.expectSame(output, input)
    #expect(
      try Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))
        == Data(contentsOf: URL(fileURLWithPath: input + "/config.json")))
  }

  /// A torchao checkpoint opened as it is stored is still refused by a recipe that quantizes:
  /// quantizing its parts would break it.
  @Test func aTorchAOCheckpointOpenedAsStoredIsRefusedByAQuantizingRecipe() throws {
    let stored = try Checkpoint(path: "\(Self.fixtures)/torchao-int8wo")
    let error = #expect(throws: PipelineError.self) {
      try ConversionPlan(checkpoint: stored, recipe: Recipe.load("int8-weight-only"), options: ConversionOptions())
    }
    #expect(error?.message.contains("already a torchao checkpoint, opened as it is stored") == true)
  }

  /// Malformed torchao inputs are refused, naming the tensor: a missing part, a part of the
  /// wrong shape, a `block_size` that does not tile the weight.
  @Test(arguments: [
    ("drop", "model.layers.0.self_attn.q_proj.weight", "part \"scale\""),
    ("reshape", "model.layers.0.self_attn.q_proj._weight_scale", "has shape [32, 2], expected [32, 1]"),
    ("block", "model.layers.0.self_attn.q_proj.weight", "block_size [1, 5] does not tile the shape [32, 32]"),
  ])
  func aMalformedTorchAOInputIsRefusedNamingTheTensor(change: String, tensor: String, says: String) throws {
    try withTemporaryDirectory { scratch in
      let source = try Checkpoint(path: "\(Self.fixtures)/torchao-int8wo")
      let scale = "model.layers.0.self_attn.q_proj._weight_scale"
      var specs: [TensorSpec] = []
      var data: [String: [UInt8]] = [:]
      for (tensor, file) in source.tensors where !(change == "drop" && tensor.name == scale) {
        let reshaped = change == "reshape" && tensor.name == scale
        specs.append(TensorSpec(name: tensor.name, dtype: tensor.dtype, shape: reshaped ? [32, 2] : tensor.shape))
        data[tensor.name] = try file.bytes(of: tensor) + (reshaped ? file.bytes(of: tensor) : [])
      }
      var metadata = source.files[0].header.metadata!
      if change == "block" {
        let name = "model.layers.0.self_attn.q_proj.weight"
        metadata[name] = metadata[name]!.replacingOccurrences(of: "[1, 32]", with: "[1, 5]")
      }
      try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
      try SafeTensorsWriter.write(
        path: scratch + "/model.safetensors", header: SafeTensorsHeader(metadata: metadata, tensors: specs), data: data)
      try FileManager.default.copyItem(
        atPath: "\(Self.fixtures)/torchao-int8wo/config.json", toPath: scratch + "/config.json")
      let error = #expect(throws: PipelineError.self) { try ConversionHarness.plan(scratch, recipe: "dequantize") }
      #expect(error?.tensor == tensor)
      #expect(error?.code == .invalidInput)
      #expect(error?.message.contains(says) == true, "\(error?.message ?? "")")
      #expect(error?.message.contains(tensor) == true)
    }
  }

  /// A torchao pickle (`pytorch_model.bin` of the same tiny Llama) is read the same way:
  /// `dequantize` writes the values of the safetensors fixture's twin.
  @Test(arguments: ["int8wo", "fp8dq", "intx4", "int4"])
  func aTorchAOPickleIsDequantizedLikeTheSafetensorsCheckpoint(name: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/pickle/ao/\(name)").path
    let (checkpoint, _) = try ConversionHarness.plan(input, recipe: "dequantize")
    #expect(checkpoint.format == "torchao pickle" && checkpoint.isDequantized)
    let output = try await ConversionHarness.converted(input, recipe: "dequantize", in: scratch)
    try ConversionHarness.expectSame(output, "\(Self.fixtures)/torchao-\(name)-bf16", ignoringFormat: true)
  }

  /// A weight of more than one piece (1104 rows of 1024: a piece of 1024 rows, then one of 80
  /// that ends inside a 128-row tile of MX and NVFP4 scales) reads as the whole-tensor dequantize
  /// of its parts, whole and in ranges across the pieces.
  @Test(arguments: [
    ("int8-weight-only", DType.bf16), ("int8-weight-only", .f16), ("float8-weight-only", .bf16),
    ("int4-weight-only", .bf16), ("mxfp8", .bf16), ("nvfp4", .bf16),
  ])
  func aWeightOfSeveralPiecesReadsAsItsWholeDequantize(recipe: String, dtype: DType) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let model = scratch.appendingPathComponent("model").path
    let name = "model.layers.0.mlp.up_proj.weight"
    try InputTests.makeModel(in: model, tensors: [(name, dtype, [1104, 1024])])
    let quantized = try await ConversionHarness.converted(model, recipe: recipe, in: scratch, "quantized")
    let expected = try #require(try TorchAOCheckpoint(Checkpoint(path: quantized)).weight(named: name))
      .dequantize().flatMap { value -> [UInt8] in
        let bits = dtype == .bf16 ? BFloat16Conversion.bits(from: value) : Float16Conversion.bits(from: value)
        return [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8)]
      }
    let (tensor, file) = try Checkpoint.input(at: quantized, dequantizing: true).tensor(named: name)
    #expect(tensor.dtype == dtype && tensor.shape == [1104, 1024])
    #expect(try file.bytes(of: tensor) == expected)
    for (offset, count) in [(2 * 1024 * 1023 + 7, 4096), (2 * 1024 * 1024 - 1, 3), (1000, 2 * 1024 * 1030)] {
      var bytes = [UInt8](repeating: 0, count: count)
      try bytes.withUnsafeMutableBytes { try file.read(tensor, at: offset, into: $0) }
      #expect(bytes == Array(expected[offset..<offset + count]), "\(offset) +\(count)")
    }
  }

  /// A MoE model's torchao checkpoint as safeshard writes it, its experts fused
  /// (`experts.gate_up_proj` [E, 2I, H] under the file's module name): read dequantized, the
  /// fused experts are parameters of their own, so a recipe quantizes them again, and equals the
  /// recipe on the `dequantize` output.
  @Test(arguments: ["mixtral", "qwen3_moe"])
  func aMoETorchAOCheckpointWithFusedExpertsIsReadDequantized(model: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let raw = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/moe/\(model)/raw").path
    let quantized = try await ConversionHarness.converted(raw, recipe: "float8-weight-only-experts", in: scratch, "q")
    let twin = try await ConversionHarness.converted(quantized, recipe: "dequantize", in: scratch, "twin")
    let module = model == "mixtral" ? "block_sparse_moe" : "mlp"
    let (experts, _) = try Checkpoint(path: twin).tensor(named: "model.layers.0.\(module).experts.gate_up_proj")
    #expect(experts.dtype == .bf16 && experts.shape == [4, 256, 128])
    let recipe = "int8-weight-only-experts"
    let (_, plan) = try ConversionHarness.plan(quantized, recipe: recipe)
    #expect(plan.entries.contains { $0.parameter == "model.layers.0.mlp.experts.gate_up_proj" && $0.config != nil })
    let output = try await ConversionHarness.converted(quantized, recipe: recipe, in: scratch)
    let expected = try await ConversionHarness.converted(twin, recipe: recipe, in: scratch, "expected")
    try ConversionHarness.expectSame(output, expected)
  }
}
