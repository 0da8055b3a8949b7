import Foundation
import Pipeline
import SafeTensors
import Testing

/// PyTorch pickle checkpoints (Tests/Fixtures/pickle, made by torch 2.15 / torchao 0.18 / 0.12 with
/// Tests/Interop/make_pickle_fixtures.py) converted through the whole pipeline: every stored
/// tensor (dtype, shape, bytes) and every `__metadata__` entry (parsed; `tensor_names` as a set,
/// its order is free; transformers' `format` left aside where the golden was written without it)
/// equals the golden or the conversion of the safetensors twin.
@Suite struct PickleConversionTests {
  static let fixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/pickle").path

  /// A bare `.pt` file with `--recipe reshard`: every name of the state dict, as a contiguous copy
  /// (views with offsets and strides, 0-d and empty tensors, shared storages, float8, legacy
  /// format, protocol 4, py2 strings, 300 tensors).
  @Test(arguments: ["plain", "module_sd", "legacy", "proto4", "py2_strings", "many"])
  func reshardingAPickleFileWritesItsStateDict(name: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = try await ConversionHarness.converted("\(Self.fixtures)/\(name).pt", recipe: "reshard", in: scratch)
    try ConversionHarness.expectSame(output, "\(Self.fixtures)/\(name).safetensors", ignoringFormat: true)
  }

  /// A tiny Llama saved as `pytorch_model.bin` (zip and legacy format) and as 5 shards with
  /// `pytorch_model.bin.index.json`: any recipe gives what it gives on the model saved as
  /// safetensors by `save_pretrained` (`lm_head.weight`, tied to the embedding, left out as
  /// `save_pretrained` leaves it out).
  @Test(
    arguments: ["hf-single", "hf-legacy", "hf-sharded"],
    ["reshard", "int8-weight-only", "float8-dynamic", "int8-dynamic", "intx-weight-only-int4"])
  func aPickleModelConvertsAsItsSafetensorsTwin(model: String, recipe: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let twin = model == "hf-sharded" ? "hf-sharded-safetensors" : "hf-single-safetensors"
    let output = try await ConversionHarness.converted("\(Self.fixtures)/\(model)", recipe: recipe, in: scratch)
    let expected = try await ConversionHarness.converted(
      "\(Self.fixtures)/\(twin)", recipe: recipe, in: scratch, "twin")
    try ConversionHarness.expectSame(output, expected)
    #expect(!FileManager.default.fileExists(atPath: output + "/pytorch_model.bin"))
    let config = { (path: String) in try JSONParser.parse(Array(Data(contentsOf: URL(fileURLWithPath: path)))) }
    // The twin's config.json, written by save_pretrained, has two more keys than the pickle's.
    #expect(
      try config(output + "/config.json")["quantization_config"]
        == config(expected + "/config.json")["quantization_config"])
  }

  /// torchao 0.18 tensor subclasses pickled (Int8Tensor weight-only and dynamic, Float8Tensor
  /// weight-only and dynamic with its Float8MMConfig, IntxUnpackedToInt8Tensor, Int4Tensor):
  /// `--recipe reshard` writes torchao's safetensors layout, equal to torchao's
  /// `flatten_tensor_state_dict` of the loaded state dict, and keeps config.json as it is.
  @Test(arguments: ["int8wo", "int8dq", "fp8wo", "fp8dq", "intx4", "int4"])
  func aTorchAOPickleBecomesTorchAOSafetensors(name: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = "\(Self.fixtures)/ao/\(name)"
    #expect(try Checkpoint.input(at: input).format == "torchao pickle")
    let output = try await ConversionHarness.converted(input, recipe: "reshard", in: scratch)
    try ConversionHarness.expectSame(output, "\(input)/expected.safetensors", ignoringFormat: true)
    #expect(
      try Data(contentsOf: URL(fileURLWithPath: output + "/config.json"))
        == Data(contentsOf: URL(fileURLWithPath: input + "/config.json")))
  }

  /// Legacy AffineQuantizedTensor pickles (torchao 0.12) with plain layouts read as their
  /// dequantized values, bit for bit torchao 0.12's `dequantize()`; a packed layout is refused
  /// with a message that says so, and nothing is written.
  @Test(arguments: ["int8wo", "int8dq", "fp8wo"])
  func aLegacyAffineQuantizedPickleIsDequantized(name: String) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = try await ConversionHarness.converted(
      "\(Self.fixtures)/aqt/\(name).pt", recipe: "reshard", in: scratch)
    try ConversionHarness.expectSame(
      output, "\(Self.fixtures)/aqt/\(name).dequantized.safetensors", ignoringFormat: true)
  }

  /// A model directory of legacy weights with the `quantization_config` torchao 0.12 wrote: read
  /// dequantized, so `reshard` drops that config (the weights are bfloat16 now) and a quantizing
  /// recipe replaces it with its own instead of refusing the input as already quantized.
  @Test func aLegacyModelDirectoryLosesItsStaleQuantizationConfig() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let model = scratch.appendingPathComponent("aqt").path
    try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: "\(Self.fixtures)/aqt/int8wo.pt", toPath: model + "/pytorch_model.bin")
    let config =
      #"{"model_type": "llama", "quantization_config": {"quant_method": "torchao", "quant_type": "int8_weight_only"}}"#
    try config.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
    #expect(try Checkpoint.input(at: model).isDequantized)
    let parsed = { (path: String) in try JSONParser.parse(Array(Data(contentsOf: URL(fileURLWithPath: path)))) }

    let resharded = try await ConversionHarness.converted(model, recipe: "reshard", in: scratch)
    try ConversionHarness.expectSame(
      resharded, "\(Self.fixtures)/aqt/int8wo.dequantized.safetensors", ignoringFormat: true)
    #expect(try parsed(resharded + "/config.json")["quantization_config"] == nil)
    #expect(try parsed(resharded + "/config.json")["model_type"] == .string("llama"))

    let quantized = try await ConversionHarness.converted(model, recipe: "float8-dynamic", in: scratch, "float8")
    #expect(try parsed(quantized + "/config.json")["quantization_config"]?["quant_method"] == .string("torchao"))
    #expect(try parsed(quantized + "/config.json")["quantization_config"]?["quant_type"]?["default"] != nil)
  }

  /// Any byte range of a tensor read by rows (a legacy weight dequantized, a strided view
  /// gathered) equals that range of the whole tensor: ranges that start and end inside rows, span
  /// rows, or are one byte.
  @Test(arguments: [("aqt/int8wo.pt", "0.weight"), ("aqt/fp8wo.pt", "0.weight"), ("plain.pt", "view_t")])
  func anyRangeOfARowReadTensorIsThatRangeOfTheWhole(file: String, name: String) throws {
    let checkpoint = try Checkpoint.input(at: "\(Self.fixtures)/\(file)")
    let (tensor, source) = try checkpoint.tensor(named: name)
    let whole = try source.bytes(of: tensor)
    let row = tensor.byteCount / tensor.shape[0]
    for (offset, count) in [(0, 1), (1, row), (row - 1, 2), (3, 2 * row + 5), (row, row), (tensor.byteCount - 3, 3)] {
      var part = [UInt8](repeating: 0, count: count)
      try part.withUnsafeMutableBytes { buffer in
        try Result { () throws(SafeTensorsError) in try source.read(tensor, at: offset, into: buffer) }.get()
      }
      #expect(part == Array(whole[offset..<offset + count]), "\(name) bytes \(offset)..<\(offset + count)")
    }
  }

  @Test func aPackedAffineQuantizedLayoutIsRefused() throws {
    let error = #expect(throws: PipelineError.self) {
      try Checkpoint.input(at: "\(Self.fixtures)/aqt/int4wo_cpu.pt")
    }
    #expect(error?.code == .invalidInput)
    #expect(error?.message.contains("packed AQT layouts are not supported") == true)
  }

  /// A hostile pickle is refused before any output exists, naming the file, the byte and the
  /// global it would have called.
  @Test func aHostilePickleIsRefusedNamingTheFileOffsetAndGlobal() throws {
    let path = "\(Self.fixtures)/adversarial/global_os_system_in_dict.pt"
    let error = #expect(throws: PipelineError.self) { try Checkpoint.input(at: path) }
    #expect(error?.path == path)
    #expect(error?.message.contains("byte ") == true)
    #expect(error?.message.contains("system") == true)
  }

  /// A sharded pickle whose index moves a tensor to another shard, or lists one no shard holds.
  @Test func aShardedPickleWhoseIndexDisagreesIsRefusedNamingTheTensor() throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let model = scratch.appendingPathComponent("model").path
    try FileManager.default.copyItem(atPath: "\(Self.fixtures)/hf-sharded", toPath: model)
    let indexPath = model + "/pytorch_model.bin.index.json"
    let original = try String(contentsOfFile: indexPath, encoding: .utf8)
    let name = "model.norm.weight"
    let index = try ShardIndex.decode(Array(original.utf8), path: indexPath)
    let shard = try #require(index.weightMap.first { $0.tensor == name }?.file)
    let other = try #require(index.shardFiles.first { $0 != shard })
    var moved = index
    moved.weightMap = index.weightMap.map { $0.tensor == name ? ($0.tensor, other) : $0 }
    try moved.encoded().write(toFile: indexPath, atomically: true, encoding: .utf8)
    let error = #expect(throws: PipelineError.self) { try Checkpoint.input(at: model) }
    #expect(error?.tensor == name)
    #expect(error?.message.contains("the index puts it in \(other), but it is in \(shard)") == true)

    var extra = index
    extra.weightMap.append(("model.extra.weight", shard))
    try extra.encoded().write(toFile: indexPath, atomically: true, encoding: .utf8)
    let missing = #expect(throws: PipelineError.self) { try Checkpoint.input(at: model) }
    #expect(missing?.tensor == "model.extra.weight")
    #expect(missing?.message.contains("which does not hold it") == true)
  }

  @Test func theInputFormatIsNamed() throws {
    #expect(try Checkpoint.input(at: "\(Self.fixtures)/hf-single").format == "pickle (zip)")
    #expect(try Checkpoint.input(at: "\(Self.fixtures)/hf-legacy").format == "pickle (legacy)")
    #expect(try Checkpoint.input(at: "\(Self.fixtures)/hf-single-safetensors").format == "safetensors")
  }
}
