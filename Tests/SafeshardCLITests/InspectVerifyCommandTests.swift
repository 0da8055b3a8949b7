import Foundation
import SafeTensors
import Testing

@Suite struct InspectVerifyCommandTests {
  static let tinyLlama = CLIRunner.repository.appendingPathComponent("Examples/tiny-llama").path
  static let fixtures = CLIRunner.repository.appendingPathComponent("Tests/Fixtures")

  @Test func verifyAcceptsTheShippedModel() throws {
    let result = try CLIRunner.run(["verify", Self.tinyLlama])
    #expect(result.status == 0)
    #expect(result.standardOutput == "\(Self.tinyLlama): OK, 2 files, 21 tensors, 853248 data bytes\n")
  }

  @Test func inspectListsEveryTensorWithTotalsAndMetadata() throws {
    let result = try CLIRunner.run(["inspect", Self.tinyLlama])
    #expect(result.status == 0)
    let lines = result.standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(
      lines.first?.split(separator: " ", omittingEmptySubsequences: true) == [
        "name", "dtype", "shape", "bytes", "file",
      ])
    #expect(
      lines.contains {
        $0.split(separator: " ", omittingEmptySubsequences: true)
          == ["model.embed_tokens.weight", "BF16", "[512,", "128]", "131072", "model-00001-of-00002.safetensors"]
      })
    #expect(result.standardOutput.contains("21 tensors, 426624 parameters, 853248 bytes (833.3 KiB) in 2 files"))
    #expect(result.standardOutput.contains("  format = pt"))
  }

  @Test func inspectJSONParsesAndAgreesWithTheFiles() throws {
    let result = try CLIRunner.run(["inspect", "--json", Self.tinyLlama])
    #expect(result.status == 0)
    let json = try JSONParser.parse(result.standardOutput.trimmingCharacters(in: .newlines))
    #expect(json["totals"]?["tensors"]?.uint64 == 21)
    #expect(json["totals"]?["bytes"]?.uint64 == 853_248)
    let norm = json["tensors"]?.array?.first { $0["name"]?.string == "model.norm.weight" }
    #expect(norm?["shape"] == .array([.number("128")]))
    #expect(norm?["dtype"]?.string == "BF16")
    #expect(json["files"]?.array?.count == 2)
  }

  @Test func inspectSummarisesTorchAOMetadataByType() throws {
    let path = Self.fixtures.appendingPathComponent("torchao/int8_weight_only__bf16/expected.safetensors").path
    let result = try CLIRunner.run(["inspect", path])
    #expect(result.status == 0)
    #expect(result.standardOutput.contains("  torchao: 6 tensor entries: Int8Tensor ×5, Tensor ×1\n"))
    #expect(
      result.standardOutput.contains(
        #"  tensor_names = ["a.weight", "b.weight", "c.weight", "c.bias", "t.weight", "experts.w"]"#))
  }

  @Test func verifyChecksTorchAOMetadataAndInspectShowsEachSchemes() throws {
    let path = Self.fixtures.appendingPathComponent("torchao/int4_weight_only_g32__bf16/expected.safetensors").path
    let verified = try CLIRunner.run(["verify", path])
    #expect(verified.status == 0)
    #expect(verified.standardOutput.hasSuffix(", 4 torchao weights\n"))
    let inspected = try CLIRunner.run(["inspect", path])
    #expect(inspected.standardOutput.contains("  experts.w  Int4Tensor int4 group 32, bfloat16 [2, 16, 64]\n"))

    // The same file with a _type outside torchao's allowlist.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = try SafeTensorsFile(path: path)
    var metadata = try #require(file.header.metadata)
    metadata["a.weight"] = metadata["a.weight"]!.replacingOccurrences(of: "Int4Tensor", with: "builtins.eval")
    let header = try SafeTensorsHeader(
      metadata: metadata,
      tensors: file.header.tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) })
    let bad = directory.appendingPathComponent("bad.safetensors").path
    try SafeTensorsWriter.write(
      path: bad, header: header,
      data: Dictionary(uniqueKeysWithValues: try file.header.tensors.map { ($0.name, try file.bytes(of: $0)) }))
    let refused = try CLIRunner.run(["verify", bad])
    #expect(refused.status == 1)
    #expect(
      refused.standardOutput.hasPrefix(
        "\(bad): tensor 'a.weight': _type \"builtins.eval\" is not a torchao tensor subclass"))
    #expect(refused.standardOutput.contains("[rule unknown-type]"))
  }

  @Test func verifyPrintsOneLinePerProblemAndFails() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    for name in try FileManager.default.contentsOfDirectory(atPath: Self.tinyLlama) {
      try FileManager.default.copyItem(
        at: URL(fileURLWithPath: Self.tinyLlama).appendingPathComponent(name),
        to: directory.appendingPathComponent(name))
    }
    // Truncate one shard and point one index entry at a missing shard: two problems.
    let shard = directory.appendingPathComponent("model-00002-of-00002.safetensors")
    let handle = try FileHandle(forWritingTo: shard)
    try handle.truncate(atOffset: 1000)
    try handle.close()
    let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
    let index = try String(contentsOf: indexURL, encoding: .utf8)
      .replacingOccurrences(
        of: #""model.norm.weight": "model-00002-of-00002.safetensors""#,
        with: #""model.norm.weight": "gone.safetensors""#)
    try index.write(to: indexURL, atomically: true, encoding: .utf8)

    let result = try CLIRunner.run(["verify", directory.path])
    #expect(result.status == 1)
    let lines = result.standardOutput.split(separator: "\n")
    #expect(lines.count == 3)
    #expect(lines.contains { $0.contains("gone.safetensors") && $0.contains("[rule missing-shard]") })
    #expect(lines.contains { $0.hasPrefix(shard.path + ": ") && $0.hasSuffix("[rule incomplete-buffer]") })
    #expect(lines.last == "\(directory.path): 2 problems found")
  }

  @Test(arguments: [
    (["inspect", "/nonexistent/model"], "no such file or directory"),
    (["inspect", CLIRunner.repository.appendingPathComponent("Package.swift").path], "[rule header-too-large]"),
  ])
  func inspectOfBadInputFailsWithAClearMessage(arguments: [String], message: String) throws {
    let result = try CLIRunner.run(arguments)
    #expect(result.status == 65)
    #expect(result.standardOutput.isEmpty)
    #expect(result.standardError.hasPrefix("Error: "))
    #expect(result.standardError.contains(message))
  }

  @Test func aValidFileWithAHugeEmptyShapeIsInspectedNotCrashedOn() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let json = Array(#"{"z":{"dtype":"BF16","shape":[9223372036854775807,2,0],"data_offsets":[0,0]}}"#.utf8)
    let path = directory.appendingPathComponent("z.safetensors").path
    try Data(withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json).write(
      to: URL(fileURLWithPath: path))
    let inspected = try CLIRunner.run(["inspect", path])
    #expect(inspected.status == 0)
    #expect(inspected.standardOutput.contains("1 tensors, 0 parameters, 0 bytes"))
    let planned = try CLIRunner.run(["plan", path, "--recipe", "int8-weight-only"])
    #expect(planned.status == 0 || planned.standardError.hasPrefix("Error: "))
    let jobs = try CLIRunner.run(["plan", path, "--recipe", "int8-weight-only", "--jobs", "9223372036854775807"])
    #expect(jobs.status == 64)
  }

  @Test func namesWithControlCharactersArePrintedEscaped() throws {
    // adversarial 1.19 and 1.20: a newline breaks the table, ANSI escapes clear the screen.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let json =
      Array(
        #"{"__metadata__":{"note\u001b[31m":"x\ry"},"a\nb.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
          .utf8)
      + Array(#""\u001b[2Jc.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#.utf8)
    let path = directory.appendingPathComponent("names.safetensors").path
    try Data(withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + [UInt8](repeating: 0, count: 8))
      .write(to: URL(fileURLWithPath: path))
    for arguments in [["inspect", path], ["plan", path, "--recipe", "reshard"]] {
      let result = try CLIRunner.run(arguments)
      #expect(result.status == 0, "\(result.standardError)")
      #expect(!result.standardOutput.utf8.contains(0x1B) && !result.standardOutput.contains("\r"))
      #expect(result.standardOutput.contains(#"a\nb.weight"#) && result.standardOutput.contains(#"\u{1B}[2Jc.weight"#))
    }
    let inspected = try CLIRunner.run(["inspect", path]).standardOutput
    #expect(inspected.contains(#"note\u{1B}[31m = x\ry"#))
  }

  @Test func usageErrorsFollowArgumentParserConventions() throws {
    let missing = try CLIRunner.run(["verify"])
    #expect(missing.status == 64)
    #expect(missing.standardError.contains("Missing expected argument '<path>'"))
    let unknown = try CLIRunner.run(["frobnicate"])
    #expect(unknown.status == 64)
    let help = try CLIRunner.run(["inspect", "--help"])
    #expect(help.status == 0)
    #expect(help.standardOutput.contains("safeshard inspect path/to/model-dir --json"))
  }
}
