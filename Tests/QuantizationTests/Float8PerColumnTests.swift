import Crypto
import Foundation
import Quantization
import SafeTensors
import Testing

/// Float8 per-column scales (torchao `PerRow(1)`) on transposed `[E, K, N]` expert weights, as
/// the gpt-oss and Llama 4 float8 expert recipes write them.
@Suite struct Float8PerColumnTests {
  /// The raw expert weights of the two architectures that store experts transposed.
  static let experts = [
    ("gpt_oss", "model.layers.0.mlp.experts.gate_up_proj"), ("gpt_oss", "model.layers.0.mlp.experts.down_proj"),
    ("llama4_text", "model.layers.0.feed_forward.experts.gate_up_proj"),
    ("llama4_text", "model.layers.0.feed_forward.experts.down_proj"),
  ]

  @Test(arguments: experts)
  func quantizingTheRawExpertsGivesTorchAOsBytes(arch: String, tensor: String) throws {
    let fixture = try MoEFixture(arch)
    let (shape, input) = try fixture.input(tensor)
    let scheme = Float8Scheme(source: .bf16, granularity: .perColumn)
    let layout = try scheme.outputLayout(shape: shape)
    let rowsPerExpert = shape[1]
    // Whole, then in chunks smaller than an expert, chunks that straddle experts, and whole experts.
    let cutsList: [[Int]] = [
      [], Array(stride(from: 1, to: layout.rowCount, by: 1)), Array(stride(from: 7, to: layout.rowCount, by: 7)),
      Array(stride(from: 100, to: layout.rowCount, by: 100)),
      Array(stride(from: rowsPerExpert, to: layout.rowCount, by: rowsPerExpert)),
    ]
    for recipe in ["float8-weight-only-experts", "float8-dynamic-experts"] {
      for part in layout.parts {
        let stored = try fixture.stored(TorchAOFixture.flattenedName(tensor, part.name), recipe: recipe)
        #expect(stored.dtype == part.elementType.rawValue && stored.shape == part.shape, "\(tensor) \(part.name)")
      }
    }
    // The golden bytes tell the axes apart: the default PerRow() (one scale per input row) differs.
    let perRow = try input.withUnsafeBytes { try Float8Scheme(source: .bf16).quantize($0, shape: shape) }
    let golden = try fixture.stored(TorchAOFixture.flattenedName(tensor, .qdata), recipe: "float8-weight-only-experts")
    #expect(Self.sha256(try #require(perRow[.qdata])) != golden.sha256)
    for cuts in cutsList {
      let parts = try Buffers.quantizeInChunks(scheme, input, shape: shape, cuts: cuts)
      for part in layout.parts {
        let stored = try fixture.stored(
          TorchAOFixture.flattenedName(tensor, part.name), recipe: "float8-weight-only-experts")
        #expect(
          Self.sha256(try #require(parts[part.name])) == stored.sha256,
          "\(arch) \(tensor) \(part.name) in \(cuts.count + 1) chunks")
      }
    }
  }

  static func sha256(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
  }

  @Test func partsHaveTorchAOsShapesAndTheScaleIsPerTensorPlaced() throws {
    let layout = try Float8Scheme(source: .bf16, granularity: .perColumn).outputLayout(shape: [4, 128, 256])
    #expect(layout.parts.map(\.name) == [.qdata, .scale])
    #expect(layout.parts.map(\.elementType) == [.f8e4m3, .f32])
    #expect(layout.parts.map(\.shape) == [[4, 128, 256], [4, 1, 256]])
    #expect(layout.parts.map(\.placement) == [.rows(bytesPerRow: 256), .tensor])
    #expect(layout.rowCount == 512 && layout.rowLength == 256)
  }

  @Test func eachColumnOfEachExpertGetsItsOwnScale() throws {
    // [E=2, K=3, N=2]: column amaxes 448·2ᵏ give scales 2ᵏ; every value is exact in e4m3 then.
    let values: [Float] = [
      448, -1,  // expert 0, row 0
      -2, 0.5,  // expert 0, row 1
      1, 896,  // expert 0, row 2
      -0.25, 3,  // expert 1, row 0
      0.125, -112,  // expert 1, row 1
      0, 7,  // expert 1, row 2
    ]
    let scheme = Float8Scheme(source: .bf16, granularity: .perColumn)
    let parts = try quantize(scheme, values, shape: [2, 3, 2])
    // Scales: expert 0 column 0 amax 448 → 1, column 1 amax 896 → 2; expert 1: 0.25/448 in bf16,
    // and 112/448 = 0.25.
    let small = BFloat16Conversion.round(0.25 / 448)
    #expect(Buffers.floats(try #require(parts[.scale]), as: .fp32) == [1, 2, small, 0.25])
    let codes = try #require(parts[.qdata])
    #expect(codes[0] == 0x7E && codes[5] == 0x7E)  // 448/1 and 896/2 are e4m3's largest value
    #expect(codes[9] == 0xFE)  // −112/0.25 = −448
    // Round trip: every value comes back (e4m3 holds each quotient exactly except expert 1 column 0,
    // whose scale is inexact).
    let back = try scheme.dequantize(parts, shape: [2, 3, 2])
    for index in [0, 1, 2, 3, 4, 5, 7, 9, 11] { #expect(back[index] == values[index], "element \(index)") }
    for index in [6, 8, 10] { #expect(abs(back[index] - values[index]) <= abs(values[index]) / 16, "element \(index)") }
  }

  @Test func aTwoDimensionalWeightIsRefused() {
    let scheme = Float8Scheme(source: .bf16, granularity: .perColumn)
    #expect(errorCode { _ = try scheme.outputLayout(shape: [16, 32]) } == .unsupportedShape)
    #expect(errorCode { _ = try scheme.makeStatistic(shape: [16, 32]) } == .unsupportedShape)
    #expect(errorCode { _ = try scheme.outputLayout(shape: [2, 0, 32]) } == .unsupportedShape)
  }

  @Test func onlyFloat8TakesPerColumnScales() {
    #expect(
      errorCode { _ = try Int8Scheme(source: .bf16, granularity: .perColumn).outputLayout(shape: [2, 16, 32]) }
        == .invalidScheme)
    #expect(
      errorCode {
        _ = try IntxScheme(source: .bf16, bits: 4, mapping: .symmetric, granularity: .perColumn, scaleFormat: nil)
          .outputLayout(shape: [16, 32])
      } == .invalidScheme)
  }

  @Test func chunksNeedThePerColumnStatistic() throws {
    let scheme = Float8Scheme(source: .bf16, granularity: .perColumn)
    let shape = [2, 4, 8]
    let input = Buffers.bytes(Buffers.randomValues(count: 64, seed: 3), as: .bf16)
    let perTensor = try #require(try Float8Scheme(source: .bf16, granularity: .perTensor).makeStatistic(shape: shape))
    for statistic in [nil, perTensor] {
      #expect(errorCode { _ = try scheme.tensorParts(shape: shape, statistic: statistic) } == .invalidArgument)
      #expect(
        errorCode {
          var qdata = [UInt8](repeating: 0, count: 64)
          try qdata.withUnsafeMutableBytes { out in
            try input.withUnsafeBytes {
              try scheme.quantize($0, shape: shape, rows: 0..<8, statistic: statistic, into: [.qdata: out])
            }
          }
        } == .invalidArgument)
    }
  }

  @Test func thePerColumnStatisticKeepsOneMaximumPerColumnOfEachExpert() throws {
    let scheme = Float8Scheme(source: .bf16, granularity: .perColumn)
    var statistic = try #require(try scheme.makeStatistic(shape: [2, 2, 3]))
    #expect(statistic.columns == 3 && statistic.rowsPerGroup == 2 && statistic.groupCount == 2)
    #expect(statistic.byteCount == 4 * 6)
    // Rows 1..<3: the second row of expert 0 and the first of expert 1; NaN reaches its column only.
    let rows = Buffers.bytes([-5, 1, 0, 2, .nan, -0.5], as: .bf16)
    try rows.withUnsafeBytes { try statistic.accumulate($0, firstRow: 1) }
    var other = try #require(try scheme.makeStatistic(shape: [2, 2, 3]))
    try Buffers.bytes([3, -7, 0.25, 1, 1, 0.125], as: .bf16).withUnsafeBytes { try other.accumulate($0, firstRow: 0) }
    try statistic.merge(other)
    let values = statistic.values
    #expect(values.count == 6)
    #expect(Array(values[0..<3]) == [5, 7, 0.25])
    #expect(values[3] == 2 && values[4].isNaN && values[5] == 0.5)
    // A per-tensor statistic of the same tensor does not merge into it.
    let perTensor = try #require(
      try Float8Scheme(source: .bf16, granularity: .perTensor).makeStatistic(shape: [2, 2, 3]))
    #expect(errorCode { try statistic.merge(perTensor) } == .invalidArgument)
  }

  @Test func aZeroColumnShowsAsAZeroBlockNotAZeroTensor() throws {
    let scheme = Float8Scheme(source: .bf16, granularity: .perColumn)
    var values = Buffers.randomValues(count: 2 * 4 * 8, seed: 5)
    for row in 0..<4 { values[32 + row * 8 + 3] = 0 }  // expert 1, column 3
    values[5] = .infinity  // expert 0, row 0, column 5
    let parts = try quantize(scheme, values, shape: [2, 4, 8])
    var findings = ScaleFindings()
    let part = try #require(try scheme.outputLayout(shape: [2, 4, 8]).part(.scale))
    try #require(parts[.scale]).withUnsafeBytes { findings.scan(part: part, bytes: $0) }
    #expect(!findings.zeroTensorScale && !findings.nonFiniteTensorScale)
    #expect(findings.zero.count == 1 && findings.zero.countsBlocks)
    #expect(findings.nonFinite.count == 1 && findings.nonFinite.countsBlocks)
  }
}
