import Quantization
import Testing

@Suite struct IntxSchemeTests {
  @Test(arguments: 1...8)
  func codesAndZeroPointsStayInTheRangeOfTheWidth(bits: Int) throws {
    let range = -(1 << (bits - 1))...((1 << (bits - 1)) - 1)
    for mapping in IntxMapping.allCases {
      let scheme = IntxScheme(source: .bf16, bits: bits, mapping: mapping, granularity: .perGroup(16))
      let parts = try quantize(scheme, Buffers.randomValues(count: 4 * 64, seed: UInt64(bits)), shape: [4, 64])
      #expect(try #require(parts[.qdata]).allSatisfy { range.contains(Int(Int8(bitPattern: $0))) })
      #expect(try #require(parts[.zeroPoint]).allSatisfy { range.contains(Int(Int8(bitPattern: $0))) })
      if mapping != .asymmetric { #expect(parts[.zeroPoint]?.allSatisfy { $0 == 0 } == true) }
    }
  }

  @Test func scalesAreStoredInTheInputFormatUnlessOverridden() throws {
    let plain = try IntxScheme(source: .fp16, bits: 4, granularity: .perGroup(32)).outputLayout(shape: [16, 64])
    #expect(plain.part(.scale)?.elementType == .f16 && plain.part(.scale)?.shape == [16, 2])
    let overridden = try IntxScheme(source: .bf16, bits: 4, granularity: .perRow, scaleFormat: .fp32)
      .outputLayout(shape: [16, 64])
    #expect(overridden.part(.scale)?.elementType == .f32 && overridden.part(.scale)?.shape == [16, 1])
  }

  @Test func fp16GroupsUseTheFp16SmallestNormalAsEps() throws {
    let parts = try quantize(IntxScheme(source: .fp16, bits: 4, granularity: .perRow), [1e-4, -2e-4], shape: [1, 2])
    #expect(parts[.scale] == Buffers.bytes([0x1p-14], as: .fp16))
  }

  @Test func theProductIsRoundedToBFloat16BeforeRounding() throws {
    // int8 symmetric, amax 127.5 → scale 1; x = 100.74 rounds to 100.5 in bf16 (the input),
    // and 100.5 ties to 100. A clean rint(x / s) on the fp32 value would give 101 for 100.74.
    let parts = try quantize(IntxScheme(source: .bf16, bits: 8, granularity: .perRow), [127.5, 100.74], shape: [1, 2])
    #expect(parts[.qdata]?.map { Int8(bitPattern: $0) } == [127, 100])
  }

  @Test func shapesAndParametersTorchAORefusesAreTypedErrors() {
    #expect(
      errorCode { _ = try IntxScheme(source: .bf16, bits: 4, granularity: .perRow).outputLayout(shape: [2, 16, 64]) }
        == .unsupportedShape)
    #expect(
      errorCode {
        _ = try IntxScheme(source: .bf16, bits: 4, granularity: .perGroup(32)).outputLayout(shape: [16, 40])
      } == .unsupportedShape)
    #expect(
      errorCode { _ = try IntxScheme(source: .bf16, bits: 9, granularity: .perRow).outputLayout(shape: [16, 64]) }
        == .invalidScheme)
    #expect(
      errorCode { _ = try IntxScheme(source: .bf16, bits: 4, granularity: .perTensor).outputLayout(shape: [16, 64]) }
        == .invalidScheme)
  }
}
