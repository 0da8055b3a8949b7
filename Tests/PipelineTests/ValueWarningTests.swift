import Foundation
import Pipeline
import SafeTensors
import Synchronization
import Testing

/// convert warns, naming the tensor and row, about NaN or infinity in a quantized or copied tensor
/// and about rows that quantize to NaN (adversarial M11); the output stays torchao's.
@Suite struct ValueWarningTests {
  /// A one-tensor BF16 model, `model.up.weight` [16, 64] (NVFP4 wants N % 16 == 0): ones, but
  /// row 1 zeros, a NaN at row 2 column 5 and +inf at row 3 column 40.
  static func model(in directory: String) throws -> String {
    let header = try SafeTensorsHeader(
      metadata: nil, tensors: [TensorSpec(name: "model.up.weight", dtype: .bf16, shape: [16, 64])])
    var values = [UInt16](repeating: 0x3F80, count: 16 * 64)
    for column in 0..<64 { values[64 + column] = 0 }
    values[2 * 64 + 5] = 0x7FC0
    values[3 * 64 + 40] = 0x7F80
    let bytes = values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
    let path = directory + "/model.safetensors"
    try SafeTensorsWriter.write(path: path, header: header, data: ["model.up.weight": bytes])
    return path
  }

  static func warnings(recipe: String) async throws -> [String] {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    try FileManager.default.createDirectory(at: scratch.appendingPathComponent("in"), withIntermediateDirectories: true)
    let input = try model(in: scratch.appendingPathComponent("in").path)
    var recipe = recipe
    if recipe.contains("\n") {  // a recipe file's text
      let file = scratch.appendingPathComponent("recipe.yaml")
      try Data(recipe.utf8).write(to: file)
      recipe = file.path
    }
    let events = Mutex<[String]>([])
    try await ConversionHarness.convert(
      input, to: scratch.appendingPathComponent("out").path, recipe: recipe,
      progress: { event in
        if case .warning(let tensor, let message) = event { events.withLock { $0.append("\(tensor): \(message)") } }
      })
    return events.withLock { $0 }
  }

  @Test func float8NamesTheRowsWithNaNOrInfinityAndTheZeroRow() async throws {
    let warnings = try await Self.warnings(recipe: "float8-weight-only")
    #expect(
      warnings == [
        "model.up.weight: 2 of 16 rows (first: row 2) hold NaN or infinity in the input, which quantizes to NaN, infinity or the format's largest value "
          + "(torchao stores the same)",
        "model.up.weight: row 1 is all zeros or too small for a float8 scale: the scale is 0, so every zero there "
          + "quantizes to NaN (torchao stores the same)",
      ])
  }

  @Test func intxNamesTheRowsWithNaNOrInfinityAndNotTheZeroRow() async throws {
    // intx clamps its scale to an eps, so the zero row is fine there.
    let warnings = try await Self.warnings(recipe: "intx-weight-only-int4")
    #expect(
      warnings == [
        "model.up.weight: 2 of 16 rows (first: row 2) hold NaN or infinity in the input, which quantizes to NaN, infinity or the format's largest value "
          + "(torchao stores the same)"
      ])
  }

  @Test func mxNamesTheBlocksWithNaNOrInfinity() async throws {
    // RCEIL gives the NaN block scale byte 255 and the infinite one 254; the swizzled scales hide
    // the rows.
    let warnings = try await Self.warnings(recipe: "mxfp8")
    #expect(
      warnings == [
        "model.up.weight: 2 blocks hold NaN or infinity in the input, which quantizes to NaN, infinity or the format's largest value "
          + "(torchao stores the same)"
      ])
  }

  @Test func nvfp4WithoutAPerTensorScaleReadsTheInputForNaNAndInfinity() async throws {
    // Without a per-tensor scale an infinite block's scale clamps to 448: only the input shows it.
    let recipe = "name: nvfp4-no-tensor-scale\nquantize:\n  scheme: nvfp4\n  per-tensor-scale: false\n"
    let warnings = try await Self.warnings(recipe: recipe)
    #expect(
      warnings == [
        "model.up.weight: 2 of 16 rows (first: row 2) hold NaN or infinity in the input, which quantizes to NaN, infinity or the format's largest value "
          + "(torchao stores the same)"
      ])
  }

  @Test func aCopiedTensorWithNaNOrInfinityIsNamed() async throws {
    let warnings = try await Self.warnings(recipe: "reshard")
    #expect(warnings == ["model.up.weight: 2 values are NaN or infinity in the input (copied unchanged)"])
  }

  @Test func aFiniteModelGetsNoWarning() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let events = Mutex<[ProgressEvent]>([])
    try await ConversionHarness.convert(
      ConversionHarness.tinyLlama, to: scratch.appendingPathComponent("out").path, recipe: "float8-weight-only",
      progress: { event in events.withLock { $0.append(event) } })
    #expect(events.withLock { $0 }.allSatisfy { if case .warning = $0 { false } else { true } })
  }
}
