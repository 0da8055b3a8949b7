import Foundation
import Pipeline
import SafeTensors
import Testing

/// Plans that would write an output `safeshard verify` (or torchao) rejects are refused before
/// any data moves (adversarial M8).
@Suite struct OutputCheckTests {
  /// Writes a one-file checkpoint of F32 tensors (zeros) with `metadata`, and returns its path.
  static func checkpoint(
    in directory: String, tensors: [(String, [Int])], metadata: [String: String]? = nil
  ) throws -> String {
    let path = directory + "/model.safetensors"
    let header = try SafeTensorsHeader(
      metadata: metadata, tensors: tensors.map { TensorSpec(name: $0.0, dtype: .f32, shape: $0.1) })
    let data = Dictionary(
      uniqueKeysWithValues: header.tensors.map { ($0.name, [UInt8](repeating: 0, count: $0.byteCount)) })
    try SafeTensorsWriter.write(path: path, header: header, data: data)
    return path
  }

  /// Writes `header` with each tensor's bytes in data order (names that differ only in
  /// normalization cannot be keys of one `[String: …]`).
  static func write(_ path: String, _ header: SafeTensorsHeader, _ data: [[UInt8]]) throws {
    var writer = try SafeTensorsWriter(path: path, header: header)
    for bytes in data { try writer.write(bytes) }
    try writer.finish()
  }

  static func planError(_ path: String, recipe: String) -> PipelineError? {
    #expect(throws: PipelineError.self) {
      try ConversionPlan(checkpoint: Checkpoint(path: path), recipe: Recipe.load(recipe), options: ConversionOptions())
    }
  }

  @Test func reshardRefusesTorchAOMetadataOutsideTheAllowlist() throws {
    try withTemporaryDirectory { directory in
      let evil = #"{"_type": "EvilTensor", "_data": {"cmd": {"_type": "os.system", "_data": "true"}}}"#
      let path = try Self.checkpoint(
        in: directory, tensors: [("model.up.weight", [4, 4])],
        metadata: ["tensor_names": #"["model.up.weight"]"#, "model.up.weight": evil, "format": "pt"])
      let error = Self.planError(path, recipe: "reshard")
      #expect(error?.code == .invalidInput)
      #expect(error?.tensor == "model.up.weight")
      #expect(error?.message.contains("\"EvilTensor\" is not a torchao tensor subclass on the allowlist") == true)
    }
  }

  @Test func reshardKeepsAllowlistedTorchAOMetadata() throws {
    try withTemporaryDirectory { directory in
      let path = try Self.checkpoint(
        in: directory, tensors: [("model.norm.weight", [4])],
        metadata: ["tensor_names": #"["model.norm.weight"]"#, "model.norm.weight": #"{"_type": "Tensor"}"#])
      let plan = try ConversionPlan(
        checkpoint: Checkpoint(path: path), recipe: Recipe.load("reshard"), options: ConversionOptions())
      #expect(plan.metadata["tensor_names"] == #"["model.norm.weight"]"#)
    }
  }

  @Test func namesThatDifferOnlyInNormalizationAreReshardedAsTwoTensors() async throws {
    let (nfc, nfd) = ("model.caf\u{E9}.weight", "model.cafe\u{301}.weight")
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input = scratch.appendingPathComponent("in").path
    try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
    let header = try SafeTensorsHeader(
      metadata: nil,
      tensors: [TensorSpec(name: nfc, dtype: .u8, shape: [2]), TensorSpec(name: nfd, dtype: .u8, shape: [3])])
    try Self.write(input + "/model.safetensors", header, [[1, 2], [3, 4, 5]])
    // The header table keys by bytes, so both entries are there.
    #expect(header.tensors.count == 2)
    let output = scratch.appendingPathComponent("out").path
    try await ConversionHarness.convert(input + "/model.safetensors", to: output, recipe: "reshard")
    let file = try SafeTensorsFile(path: output + "/model.safetensors")
    #expect(try file.bytes(of: #require(file.header.tensor(named: nfc))) == [1, 2])
    #expect(try file.bytes(of: #require(file.header.tensor(named: nfd))) == [3, 4, 5])
    // A quantized output's metadata cannot describe both.
    try Self.write(
      input + "/model.safetensors",
      try SafeTensorsHeader(
        metadata: nil,
        tensors: [
          TensorSpec(name: "model.up.weight", dtype: .f32, shape: [64, 64]),
          TensorSpec(name: nfc, dtype: .u8, shape: [2]),
          TensorSpec(name: nfd, dtype: .u8, shape: [3]),
        ]),
      [[UInt8](repeating: 0, count: 64 * 64 * 4), [1, 2], [3, 4, 5]])
    let error = Self.planError(input + "/model.safetensors", recipe: "int8-weight-only")
    #expect(error?.message.contains("Unicode normalization") == true)
  }

  @Test(arguments: [
    ("tensor_names", "also a key of torchao's __metadata__"), ("format", "also a key of torchao's __metadata__"),
    ("logit_scale", "torchao cannot load a name without a dot"),
  ])
  func aQuantizedOutputRefusesNamesItsMetadataCannotHold(name: String, reason: String) throws {
    try withTemporaryDirectory { directory in
      let path = try Self.checkpoint(in: directory, tensors: [("model.up.weight", [64, 64]), (name, [4])])
      let error = Self.planError(path, recipe: "int8-weight-only")
      #expect(error?.code == .invalidInput)
      #expect(error?.tensor == name)
      #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
      // Resharding writes no torchao metadata, so the same names are fine there.
      _ = try ConversionPlan(checkpoint: Checkpoint(path: path), recipe: Recipe.load("reshard"), options: .init())
    }
  }
}
