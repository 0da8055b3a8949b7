import Foundation
import Pipeline
import SafeTensors
import Testing

/// Model directories quantized to FP8 by other tools (Tests/Fixtures/quantized-input, made by
/// torch 2.15 / transformers 5.24 with Tests/Interop/make_quantized_input_fixtures.py), each with
/// its bfloat16 twin: `--recipe dequantize` writes the twin tensor for tensor and its config.json
/// without `quantization_config`; any other recipe gives what it gives on the twin.
@Suite struct QuantizedInputTests {
  static let fixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/quantized-input").path
  static let inputs = ["fp8-block", "ct-fp8-tensor", "ct-fp8-channel", "mxfp4-gpt-oss"]

  static func config(_ directory: String) throws -> JSONValue {
    try JSONParser.parse(Array(Data(contentsOf: URL(fileURLWithPath: directory + "/config.json"))))
  }

  /// Block FP8 with shapes that are not multiples of 128 (576×512, 200×300, 130×129, 64×200 with
  /// a BF16 scale), compressed-tensors FP8 per tensor (F32) and per channel (BF16, with
  /// `input_scale`), and gpt-oss's MXFP4 experts (transformers' `convert_moe_packed_tensors`, in
  /// its [E, in, out] layout): bit for bit the twin, the scales and `input_scale` gone.
  @Test(arguments: inputs)
  func dequantizeWritesTheTwin(name: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/\(name)"
    let output = try await ConversionHarness.converted(input, recipe: "dequantize", in: scratch)
    try ConversionHarness.expectSame(output, "\(input)-bf16")
    #expect(try Self.config(input)["quantization_config"] != nil)
    #expect(try Self.config(output) == Self.config("\(input)-bf16"))
    #expect(try Self.config(output)["quantization_config"] == nil)
  }

  /// Quantizing the FP8 input equals quantizing its twin: tensors, metadata and the
  /// `quantization_config` that replaces the input's.
  @Test(arguments: inputs, ["int8-weight-only", "float8-dynamic"])
  func aRecipeOnTheQuantizedInputEqualsTheRecipeOnTheTwin(name: String, recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/\(name)"
    let output = try await ConversionHarness.converted(input, recipe: recipe, in: scratch)
    let expected = try await ConversionHarness.converted("\(input)-bf16", recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
    let config = try Self.config(output)
    #expect(config == (try Self.config(expected)))
    #expect(config["quantization_config"]?["quant_method"]?.string == "torchao")
  }

  /// Under a 1 MiB budget the weights are read in chunks of 87 380 bytes (copies, across rows
  /// and blocks) or of rows (quantized), each dequantized as it is read: the same output.
  @Test(arguments: ["dequantize", "int8-weight-only"])
  func aSmallBudgetReadsTheWeightsInChunksToTheSameOutput(recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/fp8-block"
    let output = scratch.appendingPathComponent("out").path
    try await ConversionHarness.convert(input, to: output, recipe: recipe) { $0.memory = 1 << 20 }
    let expected = try await ConversionHarness.converted("\(input)-bf16", recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
  }

  /// gpt-oss's experts, dequantized from MXFP4, quantized as the recipe for MoE models does on
  /// the twin (float8 per row along the output channels of [E, in, out]).
  @Test func theMXFP4ExpertsQuantizeAsTheTwinsExperts() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/mxfp4-gpt-oss"
    let recipe = "float8-dynamic-experts"
    let output = try await ConversionHarness.converted(input, recipe: recipe, in: scratch)
    let expected = try await ConversionHarness.converted("\(input)-bf16", recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
    let metadata = try #require(try Checkpoint(path: output).files[0].header.metadata)
    #expect(metadata["model.layers.0.mlp.experts.gate_up_proj"]?.contains("Float8Tensor") == true)
  }

  /// On an input that is not quantized, `dequantize` is a copy: the same tensors and config.json.
  @Test func dequantizeCopiesAnUnquantizedInput() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/fp8-block-bf16"
    let output = try await ConversionHarness.converted(input, recipe: "dequantize", in: scratch)
    try ConversionHarness.expectSame(output, input)
    #expect(
      try Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))
        == Data(contentsOf: URL(fileURLWithPath: input + "/config.json")))
  }

  /// `reshard` copies the quantized input as it is: float8 weights, scales and config.json.
  @Test func reshardKeepsTheFP8InputAsItIs() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/ct-fp8-channel"
    let output = try await ConversionHarness.converted(input, recipe: "reshard", in: scratch)
    try ConversionHarness.expectSame(output, input)
    #expect(
      try Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))
        == Data(contentsOf: URL(fileURLWithPath: input + "/config.json")))
  }

  /// Any byte range of a dequantized weight, even one that starts or ends inside an element,
  /// reads as the same bytes of the twin.
  @Test func anyByteRangeOfADequantizedWeightIsTheTwins() throws {
    let input = try Checkpoint.input(at: "\(Self.fixtures)/fp8-block", dequantizing: true)
    let twin = try Checkpoint(path: "\(Self.fixtures)/fp8-block-bf16")
    let name = "model.layers.0.self_attn.o_proj.weight"
    let (tensor, file) = try input.tensor(named: name)
    let expected = try twin.file(holding: name).bytes(of: try twin.tensor(named: name).tensor)
    #expect(tensor.dtype == .bf16 && tensor.shape == [130, 129])
    #expect(try file.bytes(of: tensor) == expected)
    // Across the row (129 elements) and block (128) boundaries, odd and even.
    for (offset, count) in [(1, 1), (255, 4), (257, 3), (0, 259), (2 * 129 * 128 - 3, 300), (33_537, 3)] {
      var bytes = [UInt8](repeating: 0, count: count)
      try bytes.withUnsafeMutableBytes { try file.read(tensor, at: offset, into: $0) }
      #expect(bytes == Array(expected[offset..<offset + count]), "\(offset) +\(count)")
    }
  }

  /// Any byte range of the MXFP4 experts, one that covers some of the 32-value groups of a row
  /// included, reads as the same bytes of the twin.
  @Test func anyByteRangeOfTheMXFP4ExpertsIsTheTwins() throws {
    let input = try Checkpoint.input(at: "\(Self.fixtures)/mxfp4-gpt-oss", dequantizing: true)
    let twin = try Checkpoint(path: "\(Self.fixtures)/mxfp4-gpt-oss-bf16")
    let name = "model.layers.0.mlp.experts.gate_up_proj"
    let (tensor, file) = try input.tensor(named: name)
    let expected = try twin.file(holding: name).bytes(of: try twin.tensor(named: name).tensor)
    #expect(tensor.dtype == .bf16 && tensor.shape == [2, 64, 64])
    #expect(try file.bytes(of: tensor) == expected)
    // Rows are 64 elements (128 bytes), an expert 64 rows, a group 32 rows.
    for (offset, count) in [(0, 128), (1, 1), (127, 130), (32 * 128 - 6, 12), (64 * 128 - 2, 4), (100, 8000)] {
      var bytes = [UInt8](repeating: 0, count: count)
      try bytes.withUnsafeMutableBytes { try file.read(tensor, at: offset, into: $0) }
      #expect(bytes == Array(expected[offset..<offset + count]), "\(offset) +\(count)")
    }
    #expect(input.format == "MXFP4 (gpt-oss experts)")
    #expect(input.location(of: "model.layers.0.mlp.experts.gate_up_proj_scales") == nil)
    #expect(
      file.readingNote(of: name)
        == "dequantized from MXFP4 model.layers.0.mlp.experts.gate_up_proj_blocks U8 [2, 64, 2, 16] with "
        + "model.layers.0.mlp.experts.gate_up_proj_scales U8 [2, 64, 2], as [E, in, out]")
  }

  /// What `plan` and `inspect` show: the format, and how each weight is read.
  @Test func theFormatAndTheDequantizedWeightsAreNamed() throws {
    let block = try Checkpoint.input(at: "\(Self.fixtures)/fp8-block", dequantizing: true)
    #expect(block.format == "FP8 block-scaled (weight_block_size [128, 128])")
    #expect(block.isDequantized)
    #expect(block.tensorCount == 9)
    let name = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight"
    #expect(
      try block.file(holding: name).readingNote(of: name)
        == "dequantized from F8_E4M3 [576, 512] with model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv "
        + "F32 [5, 4], blocks of [128, 128]")
    #expect(try block.file(holding: "model.norm.weight").readingNote(of: "model.norm.weight") == nil)
    let channel = try Checkpoint.input(at: "\(Self.fixtures)/ct-fp8-channel", dequantizing: true)
    #expect(channel.format == "compressed-tensors FP8 (float-quantized)")
    let down = "model.layers.0.mlp.down_proj.weight"
    #expect(
      try channel.file(holding: down).readingNote(of: down)
        == "dequantized from F8_E4M3 [64, 96] with model.layers.0.mlp.down_proj.weight_scale BF16 [64, 1], "
        + "blocks of [1, 96]")
    #expect(channel.location(of: "model.layers.0.mlp.down_proj.input_scale") == nil)
    // Without dequantizing, it is the safetensors checkpoint it is.
    let raw = try Checkpoint.input(at: "\(Self.fixtures)/ct-fp8-channel")
    #expect(raw.format == "safetensors" && !raw.isDequantized)
  }

  /// Malformed scales are refused naming the tensor and what is wrong, before anything is written.
  @Test(
    arguments: [
      (
        "fp8-block-bad-grid", "model.layers.0.self_attn.o_proj.weight_scale_inv",
        "model.layers.0.self_attn.o_proj.weight_scale_inv is [1, 2]; [130, 129] in blocks of [128, 128] needs [2, 2]"
      ),
      (
        "fp8-block-missing-scale", "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.self_attn.o_proj.weight is float8_e4m3fn and has no "
          + "model.layers.0.self_attn.o_proj.weight_scale_inv"
      ),
      (
        "fp8-block-size-mismatch", "model.layers.0.self_attn.o_proj.weight_scale_inv",
        "model.layers.0.self_attn.o_proj.weight_scale_inv is [2, 2]; [130, 129] in blocks of [64, 64] needs [3, 3]"
      ),
      (
        "fp8-block-scale-wrong-dtype", "model.layers.0.self_attn.o_proj.weight_scale_inv",
        "model.layers.0.self_attn.o_proj.weight_scale_inv is int32, not a float type"
      ),
    ])
  func aMalformedScaleIsRefusedNamingTheTensor(name: String, tensor: String, message: String) throws {
    for recipe in ["dequantize", "int8-weight-only"] {
      let error = #expect(throws: PipelineError.self) {
        try ConversionHarness.plan("\(Self.fixtures)/\(name)", recipe: recipe)
      }
      #expect(error?.code == .invalidInput)
      #expect(error?.tensor == tensor)
      #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
  }

  /// Malformed MXFP4 experts are refused naming the tensor: blocks without scales, scales of
  /// another shape, blocks that are not [E, out, G, 16] bytes.
  @Test(
    arguments: [
      (
        [("model.layers.0.mlp.experts.down_proj_blocks", DType.u8, [2, 64, 1, 16])],
        "model.layers.0.mlp.experts.down_proj_blocks", "has no model.layers.0.mlp.experts.down_proj_scales"
      ),
      (
        [
          ("model.layers.0.mlp.experts.down_proj_blocks", .u8, [2, 64, 1, 16]),
          ("model.layers.0.mlp.experts.down_proj_scales", .u8, [2, 64, 2]),
        ],
        "model.layers.0.mlp.experts.down_proj_scales",
        "is U8 [2, 64, 2]; model.layers.0.mlp.experts.down_proj_blocks [2, 64, 1, 16] needs U8 [2, 64, 1]"
      ),
      (
        [
          ("model.layers.0.mlp.experts.down_proj_blocks", .u8, [2, 64, 32]),
          ("model.layers.0.mlp.experts.down_proj_scales", .u8, [2, 64, 1]),
        ],
        "model.layers.0.mlp.experts.down_proj_blocks", "is U8 [2, 64, 32], not U8 [E, out, G, 16]"
      ),
    ])
  func malformedMXFP4ExpertsAreRefusedNamingTheTensor(tensors: [(String, DType, [Int])], tensor: String, says: String)
    throws
  {
    try withTemporaryDirectory { scratch in
      try InputTests.makeModel(
        in: scratch, tensors: tensors,
        config: #"{"model_type": "gpt_oss", "quantization_config": {"quant_method": "mxfp4"}}"#)
      let error = #expect(throws: PipelineError.self) { try ConversionHarness.plan(scratch, recipe: "dequantize") }
      #expect(error?.tensor == tensor)
      #expect(error?.message.contains(says) == true, "\(error?.message ?? "")")
    }
  }

  /// A lone FP8 `.safetensors` file is refused, naming a tensor and asking for the model
  /// directory: the block size is in config.json, and guessing it from the scale grid is what
  /// transformers gets wrong.
  @Test(arguments: ["fp8-block", "ct-fp8-tensor"])
  func aSingleFP8FileIsRefusedAskingForTheModelDirectory(name: String) throws {
    let error = #expect(throws: PipelineError.self) {
      try ConversionHarness.plan("\(Self.fixtures)/\(name)/model.safetensors", recipe: "dequantize")
    }
    #expect(error?.code == .invalidInput && error?.tensor?.hasPrefix("model.layers.0.") == true)
    #expect(
      error?.message.contains(
        "Give the model directory that holds this file and its config.json.") == true, "\(error?.message ?? "")")
  }

  /// compressed-tensors FP8 of a float16 model with F16 scales: its weights are F16, the product
  /// rounded to float16 as `x.to(float16) * scale` rounds it: `dequantize` writes the fp16 twin,
  /// and a recipe on it equals the recipe on the twin.
  @Test(arguments: ["dequantize", "int8-weight-only", "float8-weight-only"])
  func compressedTensorsWithF16ScalesDequantizesToTheFloat16Twin(recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/ct-fp8-channel-f16"
    let twin = "\(input)-fp16"
    let (checkpoint, _) = try ConversionHarness.plan(input, recipe: recipe)
    #expect(try checkpoint.tensor(named: "model.layers.0.mlp.up_proj.weight").tensor.dtype == .f16)
    let output = try await ConversionHarness.converted(input, recipe: recipe, in: scratch)
    let expected =
      recipe == "dequantize" ? twin : try await ConversionHarness.converted(twin, recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
    #expect(try Self.config(output) == Self.config(expected))
  }
}
