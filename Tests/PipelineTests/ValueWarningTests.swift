import Foundation
import Pipeline
import SafeTensors
import Synchronization
import Testing

/// convert warns, naming the tensor and row, about NaN or infinity in a quantized weight and
/// about rows that quantize to NaN (adversarial M11); the output stays torchao's.
@Suite struct ValueWarningTests {
  /// A one-tensor BF16 model, `model.up.weight` [4, 64]: row 0 ones, row 1 zeros, row 2 ones with
  /// a NaN at column 5, row 3 ones with +inf at column 40.
  static func model(in directory: String) throws -> String {
    let header = try SafeTensorsHeader(
      metadata: nil, tensors: [TensorSpec(name: "model.up.weight", dtype: .bf16, shape: [4, 64])])
    var values = [UInt16](repeating: 0x3F80, count: 4 * 64)
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
        "model.up.weight: 2 of 4 rows (first: row 2) hold NaN or infinity in the input; they quantize to NaN or "
          + "infinity (torchao stores the same)",
        "model.up.weight: row 1 is all zeros or too small for a float8 scale: the scale is 0, so every zero there "
          + "quantizes to NaN (torchao stores the same)",
      ])
  }

  @Test func intxNamesTheRowsWithNaNOrInfinityAndNotTheZeroRow() async throws {
    // intx clamps its scale to an eps, so the zero row is fine there.
    let warnings = try await Self.warnings(recipe: "intx-weight-only-int4")
    #expect(
      warnings == [
        "model.up.weight: 2 of 4 rows (first: row 2) hold NaN or infinity in the input; they quantize to NaN or "
          + "infinity (torchao stores the same)"
      ])
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
