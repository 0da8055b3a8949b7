import Foundation
import SafeTensors
import Testing

/// `plan`, `inspect` and `convert` on a model quantized to FP8 by another tool: the input format,
/// each weight "dequantized from …", and the output that `--recipe dequantize` writes.
@Suite struct QuantizedInputCommandTests {
  static let fixtures = CLIRunner.repository.appendingPathComponent("Tests/Fixtures/quantized-input").path

  @Test func planNamesTheFormatAndHowEachWeightIsRead() throws {
    let result = try CLIRunner.run(["plan", "\(Self.fixtures)/fp8-block", "--recipe", "int8-weight-only"])
    #expect(result.status == 0)
    #expect(
      result.standardOutput.hasPrefix(
        "input: FP8 block-scaled (weight_block_size [128, 128]), 1 file\nrecipe int8-weight-only: 5 of 9 tensors"))
    #expect(
      result.standardOutput.contains(
        "BF16 [130, 129]  →  Int8Tensor  [model.safetensors]  (input dequantized from F8_E4M3 [130, 129] with "
          + "model.layers.0.self_attn.o_proj.weight_scale_inv F32 [2, 2], blocks of [128, 128])\n"))
    let json = try CLIRunner.run([
      "plan", "--json", "\(Self.fixtures)/ct-fp8-tensor", "--recipe", "dequantize",
    ])
    let value = try JSONParser.parse(json.standardOutput.trimmingCharacters(in: .newlines))
    #expect(value["input_format"]?.string == "compressed-tensors FP8 (float-quantized)")
    let entries = value["entries"]?.array ?? []
    #expect(entries.count == 7)
    #expect(entries.allSatisfy { $0["action"]?.string == "keep" })
    #expect(
      entries.contains {
        $0["name"]?.string == "model.layers.0.mlp.up_proj.weight" && $0["dtype"]?.string == "BF16"
          && $0["input_note"]?.string?.hasPrefix("dequantized from F8_E4M3 [96, 64]") == true
      })
  }

  @Test func inspectShowsTheDequantizedWeights() throws {
    let result = try CLIRunner.run(["inspect", "\(Self.fixtures)/fp8-block"])
    #expect(result.status == 0)
    #expect(result.standardOutput.contains("in 1 file (FP8 block-scaled (weight_block_size [128, 128]))"))
    #expect(
      result.standardOutput.contains(
        "  model.layers.0.mlp.up_proj.weight: dequantized from F8_E4M3 [64, 200] with "
          + "model.layers.0.mlp.up_proj.weight_scale_inv BF16 [1, 2], blocks of [128, 128]\n"))
  }

  @Test func convertDequantizeWritesTheTwinAndAMalformedScaleExitsWithTheDataError() throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-fp8-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let output = scratch + "/out"
    let result = try CLIRunner.run([
      "convert", "\(Self.fixtures)/fp8-block", output, "--recipe", "dequantize", "--progress", "none",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    let written = try Checkpoint(path: output)
    let twin = try Checkpoint(path: "\(Self.fixtures)/fp8-block-bf16")
    #expect(written.tensorCount == twin.tensorCount)
    for (tensor, file) in twin.tensors {
      let (other, otherFile) = try written.tensor(named: tensor.name)
      #expect(other.dtype == tensor.dtype && other.shape == tensor.shape)
      #expect(try otherFile.bytes(of: other) == file.bytes(of: tensor), "\(tensor.name)")
    }
    let refused = try CLIRunner.run([
      "convert", "\(Self.fixtures)/fp8-block-bad-grid", scratch + "/bad", "--recipe", "dequantize",
    ])
    #expect(refused.status == 65)
    #expect(refused.standardError.contains("model.layers.0.self_attn.o_proj.weight_scale_inv is [1, 2]"))
    #expect(!FileManager.default.fileExists(atPath: scratch + "/bad"))
  }

  /// A torchao input: `plan` with a recipe that quantizes names the format `torchao` and how each
  /// weight is read; with `reshard`, that it is copied as stored; `inspect` shows it as stored,
  /// each weight with its scheme.
  @Test func planAndInspectSayHowATorchAOInputIsRead() throws {
    let input = "\(Self.fixtures)/torchao-int4"
    let json = try CLIRunner.run(["plan", "--json", input, "--recipe", "int8-weight-only"])
    #expect(json.status == 0, "\(json.standardError)")
    let value = try JSONParser.parse(json.standardOutput.trimmingCharacters(in: .newlines))
    #expect(value["input_format"]?.string == "torchao")
    let module = "model.layers.0.mlp.down_proj"
    #expect(
      (value["entries"]?.array ?? []).contains {
        $0["name"]?.string == "\(module).weight" && $0["action"]?.string == "quantize" && $0["dtype"]?.string == "BF16"
          && $0["input_note"]?.string
            == "dequantized from torchao Int4Tensor int4 group 32, bfloat16 [32, 64]: \(module)._weight_qdata I8 "
            + "[32, 32], \(module)._weight_scale BF16 [2, 32], \(module)._weight_zero_point BF16 [2, 32]"
      })
    let reshard = try CLIRunner.run(["plan", input, "--recipe", "reshard"])
    #expect(reshard.standardOutput.hasPrefix("input: torchao (as stored), 1 file\n"))
    #expect(reshard.standardOutput.contains("\(module)._weight_qdata"))
    let inspect = try CLIRunner.run(["inspect", input])
    #expect(inspect.status == 0)
    #expect(inspect.standardOutput.contains("in 1 file (torchao)\n"))
    #expect(
      inspect.standardOutput.contains(
        "torchao weights (7):\n  (recipes that quantize, and dequantize, read each dequantized to its dtype; reshard "
          + "copies its parts)\n"))
  }

  /// `convert --recipe dequantize` on a torchao input writes its twin.
  @Test func convertDequantizeOfATorchAOInputWritesTheTwin() throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-tao-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let result = try CLIRunner.run([
      "convert", "\(Self.fixtures)/torchao-nvfp4", scratch, "--recipe", "dequantize", "--progress", "none",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    let written = try Checkpoint(path: scratch)
    let twin = try Checkpoint(path: "\(Self.fixtures)/torchao-nvfp4-bf16")
    #expect(written.tensorCount == twin.tensorCount)
    for (tensor, file) in twin.tensors {
      let (other, otherFile) = try written.tensor(named: tensor.name)
      #expect(try otherFile.bytes(of: other) == file.bytes(of: tensor), "\(tensor.name)")
    }
  }
}
