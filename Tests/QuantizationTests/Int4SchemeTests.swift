import Quantization
import Testing

@Suite struct Int4SchemeTests {
  @Test func partsHaveTorchAOsTransposedShapes() throws {
    let layout = try Int4Scheme(source: .bf16, groupSize: 32).outputLayout(shape: [2, 16, 64])
    #expect(layout.parts.map(\.name) == [.qdata, .scale, .zeroPoint])
    #expect(layout.parts.map(\.shape) == [[2, 16, 32], [2, 2, 16], [2, 2, 16]])
    #expect(layout.parts.map(\.elementType) == [.i8, .bf16, .bf16])
    #expect(layout.part(.scale)?.placement == .gathered)
  }

  @Test func theEvenElementGoesInTheLowNibble() throws {
    // One group 31, 0, 1, …, 30: lo 0, hi 31, so 31 → 7 and 0 → −8; byte 0 = 0x7 | 0x8 << 4.
    let values = [Float(31)] + (0..<31).map(Float.init)
    let parts = try quantize(Int4Scheme(source: .fp32, groupSize: 32), values, shape: [1, 32])
    #expect(parts[.qdata]?.first == 0x87)
    #expect(parts[.scale] == Buffers.bytes([31 / 15], as: .fp32))
    #expect(parts[.zeroPoint] == Buffers.bytes([31 / 15 * 8], as: .fp32))
  }

  @Test func scaleAndZeroPointAreWrittenTransposed() throws {
    let values = Buffers.randomValues(count: 3 * 64, seed: 5)
    let parts = try quantize(Int4Scheme(source: .fp32, groupSize: 32), values, shape: [3, 64])
    let scales = Buffers.floats(try #require(parts[.scale]), as: .fp32)
    for row in 0..<3 {
      for group in 0..<2 {
        let block = values[(row * 64 + group * 32)..<(row * 64 + group * 32 + 32)]
        #expect(scales[group * 3 + row] == (block.max()! - block.min()!) / 15)
      }
    }
  }

  @Test func weightsTorchAOLeavesPlainAreRefused() {
    #expect(
      errorCode { _ = try Int4Scheme(source: .bf16, groupSize: 64).outputLayout(shape: [16, 96]) } == .unsupportedShape)
    #expect(
      errorCode { _ = try Int4Scheme(source: .bf16, groupSize: 48).outputLayout(shape: [16, 96]) } == .invalidScheme)
  }
}
