import Quantization
import Testing

@Suite struct ScaleFindingsTests {
  @Test func float8RowScalesShowZeroRowsAndNonFiniteRowsNumberedFromTheChunk() throws {
    // A chunk of rows 4..<8 of a [8, 32] tensor: row 5 zeros, row 6 a NaN, row 7 an infinity.
    let scheme = Float8Scheme(source: .bf16)
    var values = [Float](repeating: 0.5, count: 4 * 32)
    for column in 0..<32 { values[32 + column] = 0 }
    values[2 * 32 + 3] = .nan
    values[3 * 32 + 9] = .infinity
    let layout = try scheme.outputLayout(shape: [8, 32])
    var qdata = [UInt8](repeating: 0, count: 4 * 32)
    var scale = [UInt8](repeating: 0, count: 4 * 4)
    var findings = ScaleFindings()
    try qdata.withUnsafeMutableBytes { qdata in
      try scale.withUnsafeMutableBytes { scale in
        let outputs = [PartName.qdata: qdata, .scale: scale]
        try Buffers.bytes(values, as: .bf16).withUnsafeBytes { input in
          try scheme.quantize(input, shape: [8, 32], rows: 4..<8, statistic: nil, into: outputs)
        }
        findings.scan(outputs, layout: layout, rows: 4..<8)
      }
    }
    #expect(findings.zero.count == 1 && findings.zero.first == 5 && !findings.zero.countsBlocks)
    #expect(findings.nonFinite.count == 2 && findings.nonFinite.first == 6)
    #expect(!findings.zeroTensorScale && !findings.nonFiniteTensorScale)
  }

  @Test func anAllZeroNVFP4TensorHasAZeroPerTensorScale() throws {
    let scheme = NVFP4Scheme(source: .bf16)
    let parts = try Buffers.quantizeInChunks(
      scheme, Buffers.bytes([Float](repeating: 0, count: 16 * 64), as: .bf16), shape: [16, 64], cuts: [])
    let layout = try scheme.outputLayout(shape: [16, 64])
    var findings = ScaleFindings()
    for part in layout.parts {
      try #require(parts[part.name]).withUnsafeBytes { findings.scan(part: part, bytes: $0) }
    }
    #expect(findings.zeroTensorScale)
    // A finite tensor has no findings.
    let finite = try Buffers.quantizeInChunks(
      scheme, Buffers.bytes((0..<(16 * 64)).map { Float($0 % 13) - 6 }, as: .bf16), shape: [16, 64], cuts: [])
    var none = ScaleFindings()
    for part in layout.parts { try #require(finite[part.name]).withUnsafeBytes { none.scan(part: part, bytes: $0) } }
    #expect(none.isEmpty)
  }
  @Test(arguments: FloatFormat.allCases)
  func nonFiniteCountCountsAcrossItsCounterBlocks(format: FloatFormat) {
    // 70,000 elements span three blocks of 32,767; the specials sit at and beside the block edges.
    var values = [Float](repeating: -2.5, count: 70_000)
    let specials: [Int: Float] = [
      0: .nan, 32_766: .infinity, 32_767: -.infinity, 65_534: -.nan, 65_535: .infinity, 69_999: .nan,
    ]
    for (index, value) in specials { values[index] = value }
    values[1] = 65_504  // the largest finite fp16
    let count = Buffers.bytes(values, as: format).withUnsafeBytes { ScaleFindings.nonFiniteCount($0, format) }
    #expect(count == specials.count)
    // Every element non-finite: each block's counter reaches its largest value.
    let all = Buffers.bytes([Float](repeating: .infinity, count: 70_000), as: format)
    #expect(all.withUnsafeBytes { ScaleFindings.nonFiniteCount($0, format) } == 70_000)
  }
}
