import Foundation
import SafeTensors
import Testing

/// `plan`, `inspect` and `convert` on PyTorch pickle inputs say what they read: the input format,
/// and per tensor how it is read when that is more than a copy.
@Suite struct PickleCommandTests {
  static let pickles = CLIRunner.repository.appendingPathComponent("Tests/Fixtures/pickle").path

  @Test func planNamesThePickleFormatAndTheDequantizedWeight() throws {
    let result = try CLIRunner.run(["plan", "\(Self.pickles)/aqt/int8wo.pt", "--recipe", "float8-dynamic"])
    #expect(result.status == 0)
    #expect(result.standardOutput.hasPrefix("input: pickle (zip), 1 file\nrecipe float8-dynamic: 1 of 2 tensors"))
    #expect(
      result.standardOutput.contains(
        "→  Float8Tensor  [model.safetensors]  (input dequantized from an AffineQuantizedTensor (PlainLayout, I8 data))"
      ))
    let json = try CLIRunner.run(["plan", "--json", "\(Self.pickles)/hf-legacy", "--recipe", "int8-weight-only"])
    let value = try JSONParser.parse(json.standardOutput.trimmingCharacters(in: .newlines))
    #expect(value["input_format"]?.string == "pickle (legacy)")
    #expect(value["entries"]?.array?.first?["input_note"] == .null)
  }

  @Test func inspectNamesTheFormatAndTheGatheredViews() throws {
    let result = try CLIRunner.run(["inspect", "\(Self.pickles)/plain.pt"])
    #expect(result.status == 0)
    #expect(result.standardOutput.contains("23 tensors, 123 parameters, 428 bytes (428 B) in 1 file (pickle (zip))"))
    #expect(result.standardOutput.contains("  view_t: gathered from a view with strides [1, 6]\n"))
    let torchao = try CLIRunner.run(["inspect", "\(Self.pickles)/ao/int8wo"])
    #expect(torchao.standardOutput.contains("in 1 file (torchao pickle)"))
    #expect(torchao.standardOutput.contains("torchao weights (7):"))
  }

  @Test func aHostilePickleExitsWithTheDataErrorAndWritesNothing() throws {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-pickle-\(UUID())").path
    let result = try CLIRunner.run([
      "convert", "\(Self.pickles)/adversarial/global_os_system_in_dict.pt", output, "--recipe", "reshard",
    ])
    #expect(result.status == 65)
    #expect(result.standardError.contains("global_os_system_in_dict.pt: byte "))
    #expect(!FileManager.default.fileExists(atPath: output))
  }
}
