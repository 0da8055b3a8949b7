import Foundation
import Pipeline
import SafeTensors
import Testing

/// Real conversions, checked against what their buffers held: the peak of ``Converter/Report/peakMemory`` is counted
/// by the buffers themselves (chunks, pieces, staged pieces, write blocks, the read-back buffer, spill scratch and
/// pooled mappings) when they allocate and free, so a buffer that outlives its reservation, or memory the budget does
/// not know about, shows up here as a peak over the budget.
@Suite("Memory bound")
struct MemoryBoundTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var model: Model
    var recipe: String
    var memory: Int
    var jobs: Int
    var layout: ConversionOptions.Layout = .input
    var maxShardSize = 5_000_000_000
    /// Whether the case must spill (so that staging, spill scratch and read-back are exercised).
    var spills = false
    var testDescription: String { name }
  }

  enum Model: Sendable {
    case tinyLlama
    /// Six bf16 [1024, 2048] weights (4 MiB each) and their norms: chunks of a MiB and more, so buffers are mapped
    /// and pooled.
    case mapped
  }

  static let cases: [Case] = [
    Case(
      name: "a tensor larger than the budget", model: .tinyLlama, recipe: "int8-weight-only", memory: 96 << 10, jobs: 2),
    Case(
      name: "forced spilling", model: .tinyLlama, recipe: "int8-weight-only", memory: 160 << 10, jobs: 2,
      layout: .canonical, spills: true),
    Case(name: "many workers", model: .tinyLlama, recipe: "float8-dynamic", memory: 256 << 10, jobs: 16),
    Case(
      name: "mapped and pooled buffers", model: .mapped, recipe: "int8-weight-only", memory: 24 << 20, jobs: 4,
      layout: .canonical, maxShardSize: 5_000_000),
    Case(name: "mapped copies, many workers", model: .mapped, recipe: "reshard", memory: 12 << 20, jobs: 8),
  ]

  @Test(arguments: cases)
  func theBuffersNeverHoldMoreThanTheBudget(_ test: Case) async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let input =
      switch test.model {
      case .tinyLlama: ConversionHarness.tinyLlama
      case .mapped: try Self.makeMappedModel(in: scratch)
      }
    let report = try await ConversionHarness.convert(
      input, to: scratch.appendingPathComponent("out").path, recipe: test.recipe
    ) {
      $0.memory = test.memory
      $0.jobs = test.jobs
      $0.layout = test.layout
      $0.maxShardSize = test.maxShardSize
    }
    #expect(report.peakMemory <= test.memory)
    // The gauge saw the run's buffers at all: at least the write blocks and one job.
    #expect(report.peakMemory > test.memory / 8)
    if test.spills { #expect(report.spilledBytes > 0) }
  }

  /// A single-file bf16 model of six [1024, 2048] weights with finite, seeded values.
  static func makeMappedModel(in directory: URL) throws -> String {
    let model = directory.appendingPathComponent("model").path
    try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
    var specs: [TensorSpec] = []
    for layer in 0..<6 {
      specs.append(TensorSpec(name: "model.layers.\(layer).mlp.up_proj.weight", dtype: .bf16, shape: [1024, 2048]))
      specs.append(TensorSpec(name: "model.layers.\(layer).input_layernorm.weight", dtype: .bf16, shape: [2048]))
    }
    var writer = try SafeTensorsWriter(
      path: model + "/model.safetensors", header: SafeTensorsHeader(metadata: ["format": "pt"], tensors: specs))
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for spec in specs {
      var bytes = [UInt8](repeating: 0, count: try spec.byteCount())
      for index in stride(from: 0, to: bytes.count, by: 2) {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        // Sign, an exponent around 2⁻⁶…2⁻², and a random mantissa: finite weights.
        let bits = UInt16(truncatingIfNeeded: state >> 48) & 0x807F | UInt16(0x3C + (state >> 40) % 5) << 7
        bytes[index] = UInt8(bits & 0xFF)
        bytes[index + 1] = UInt8(bits >> 8)
      }
      try writer.write(bytes)
    }
    try writer.finish()
    try #"{"model_type": "llama"}"#.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
    return model
  }
}
