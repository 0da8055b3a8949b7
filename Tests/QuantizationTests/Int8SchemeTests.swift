import Quantization
import Testing

@Suite struct Int8SchemeTests {
  @Test func partsHaveTorchAOsShapesAndTypes() throws {
    let perRow = try Int8Scheme(source: .bf16).outputLayout(shape: [16, 96])
    #expect(perRow.parts.map(\.name) == [.zeroPoint, .qdata, .scale])
    #expect(perRow.parts.map(\.shape) == [[16, 1], [16, 96], [16, 1]])
    #expect(perRow.parts.map(\.elementType) == [.i8, .i8, .f32])
    let perGroup = try Int8Scheme(source: .fp16, granularity: .perGroup(32)).outputLayout(shape: [2, 16, 96])
    #expect(perGroup.part(.scale)?.shape == [2, 16, 3] && perGroup.part(.scale)?.byteCount == 384)
    let perTensor = try Int8Scheme(source: .fp32, granularity: .perTensor).outputLayout(shape: [2, 16, 64])
    #expect(perTensor.part(.scale)?.shape == [1, 1, 1] && perTensor.part(.scale)?.placement == .tensor)
  }

  @Test func anAllZeroRowGetsTheEpsScaleAndZeroCodes() throws {
    let parts = try quantize(Int8Scheme(source: .fp16), [0, -0.0, 0, 0], shape: [1, 4])
    #expect(parts[.scale] == Buffers.bytes([0x1p-23], as: .fp32))
    #expect(parts[.qdata] == [0, 0, 0, 0])
    #expect(parts[.zeroPoint] == [0])
  }

  @Test func minus128IsReachableWhenTheBFloat16ScaleRoundsDown() throws {
    // 1.9921875 ⊘ 127.5 rounds down to 2⁻⁶ in bf16, so −1.9921875 is −127.5 scales and ties to
    // −128; +127.5 ties to 128 and clamps to 127; 2⁻⁷ is half a scale and ties to 0.
    let parts = try quantize(Int8Scheme(source: .bf16), [-1.9921875, 1.9921875, 1, 0x1p-7], shape: [1, 4])
    #expect(parts[.scale] == Buffers.bytes([0x1p-6], as: .fp32))
    #expect(parts[.qdata]?.map { Int8(bitPattern: $0) } == [-128, 127, 64, 0])
  }

  @Test func reducedRangeKeepsCodesWithinMinus64And63() throws {
    let values = Buffers.randomValues(count: 8 * 64, seed: 3)
    let parts = try quantize(Int8Scheme(source: .bf16, reduceRange: true), values, shape: [8, 64])
    let codes = try #require(parts[.qdata]).map { Int8(bitPattern: $0) }
    #expect(codes.allSatisfy { (-64...63).contains($0) })
    #expect(codes.contains(-64) || codes.contains(63))
  }

  @Test func aPerTensorChunkWithoutItsStatisticIsRefused() throws {
    let scheme = Int8Scheme(source: .bf16, granularity: .perTensor)
    let input = Buffers.bytes([1, 2, 3, 4], as: .bf16)
    var qdata = [UInt8](repeating: 0, count: 4)
    let code = qdata.withUnsafeMutableBytes { out in
      input.withUnsafeBytes { bytes in
        errorCode { try scheme.quantize(bytes, shape: [1, 4], rows: 0..<1, statistic: nil, into: [.qdata: out]) }
      }
    }
    #expect(code == .invalidArgument)
  }

  @Test func shapesTorchAORefusesAreTypedErrors() {
    #expect(
      errorCode { _ = try Int8Scheme(source: .bf16, granularity: .perGroup(32)).outputLayout(shape: [16, 40]) }
        == .unsupportedShape)
    #expect(
      errorCode { _ = try Int8Scheme(source: .bf16, granularity: .perGroup(0)).outputLayout(shape: [16, 40]) }
        == .invalidScheme)
    #expect(errorCode { _ = try Int8Scheme(source: .bf16).outputLayout(shape: [40]) } == .unsupportedShape)
    #expect(errorCode { _ = try Int8Scheme(source: .bf16).outputLayout(shape: [0, 40]) } == .unsupportedShape)
  }
}
