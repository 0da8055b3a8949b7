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

  /// The kernel leaves out torchao's second rounding, `R_pdt(rint(v) + zp)`, as unable to change
  /// a code: every finite bf16 value, 256 to a row (so rows of every magnitude, and so every
  /// scale), against the formula with that rounding, from the scale and zero point stored.
  @Test(arguments: [(IntxMapping.symmetric, 4), (.asymmetric, 4), (.asymmetric, 8), (.symmetricNoClippingError, 3)])
  func everyFiniteBFloat16ValueGetsTheCodeOfTorchAOsFormula(mapping: IntxMapping, bits: Int) throws {
    let finite = (0...UInt16.max).map { BFloat16Conversion.float(from: $0) }.filter(\.isFinite)
    let values = finite + [Float](repeating: 0, count: (256 - finite.count % 256) % 256)
    let shape = [values.count / 256, 256]
    let parts = try quantize(
      IntxScheme(source: .bf16, bits: bits, mapping: mapping, granularity: .perRow), values, shape: shape)
    let (qdata, scales, zeroPoints) = try (
      #require(parts[.qdata]), Buffers.floats(#require(parts[.scale]), as: .bf16), #require(parts[.zeroPoint])
    )
    let (qmin, qmax) = (-Float(1 << (bits - 1)), Float((1 << (bits - 1)) - 1))
    var mismatches = 0
    for row in 0..<shape[0] {
      let reciprocal = BFloat16Conversion.round(1 / scales[row])
      let zeroPoint = Float(Int8(bitPattern: zeroPoints[row]))
      for column in 0..<256 {
        let index = row * 256 + column
        let product = BFloat16Conversion.round(values[index] * reciprocal)
        let shifted = BFloat16Conversion.round(product.rounded(.toNearestOrEven) + zeroPoint)
        let code = Int8(min(max(shifted, qmin), qmax))
        if Int8(bitPattern: qdata[index]) != code { mismatches += 1 }
      }
    }
    #expect(mismatches == 0, "\(mismatches) of \(values.count) codes differ")
  }

  @Test func theProductIsRoundedToBFloat16BeforeRounding() throws {
    // int8 symmetric, amax 127.5 → scale 1; x = 100.74 rounds to 100.5 in bf16 (the input),
    // and 100.5 ties to 100. A clean rint(x / s) on the fp32 value would give 101 for 100.74.
    let parts = try quantize(IntxScheme(source: .bf16, bits: 8, granularity: .perRow), [127.5, 100.74], shape: [1, 2])
    #expect(parts[.qdata]?.map { Int8(bitPattern: $0) } == [127, 100])
  }

  @Test(arguments: IntxMapping.allCases)
  func aGroupWithANaNGetsANaNScaleAndZeroCodesAsInTorchAO(mapping: IntxMapping) throws {
    // Group 0 holds one NaN among small values (adversarial M10); group 1 is finite.
    var values = (0..<64).map { Float($0 % 7) * 0.01 - 0.03 }
    values[5] = .nan
    let scheme = IntxScheme(source: .bf16, bits: 4, mapping: mapping, granularity: .perGroup(32))
    let parts = try quantize(scheme, values, shape: [1, 64])
    let scales = try #require(parts[.scale])
    #expect(scales[0..<2] == [0xFF, 0xFF])  // bf16 0xFFFF, torchao's NaN
    #expect(!BFloat16Conversion.float(from: UInt16(scales[2]) | UInt16(scales[3]) << 8).isNaN)
    #expect(try #require(parts[.qdata])[0..<32].allSatisfy { $0 == 0 })
    #expect(try #require(parts[.qdata])[32..<64].contains { $0 != 0 })
    #expect(parts[.zeroPoint]?[0] == 0)
    let finite = try quantize(scheme, Array(values[32..<64]), shape: [1, 32])
    #expect(finite[.qdata].map(Array.init) == parts[.qdata].map { Array($0[32..<64]) })
  }

  @Test func aNegativeNaNIsTheMinimumAndStillMakesTheScaleNaN() throws {
    // fp32 keeps the NaN's sign: a negative NaN orders below −inf, so it is the group's minimum.
    let parts = try quantize(
      IntxScheme(source: .fp32, bits: 4, granularity: .perRow), [0.5, -Float.nan, 0.25, -0.5], shape: [1, 4])
    #expect(parts[.scale] == [0xFF, 0xFF, 0xFF, 0xFF])
    #expect(parts[.qdata] == [0, 0, 0, 0])
    let overridden = try quantize(
      IntxScheme(source: .bf16, bits: 4, granularity: .perRow, scaleFormat: .fp32), [0.5, .nan], shape: [1, 2])
    #expect(overridden[.scale] == [0x00, 0x00, 0xFF, 0xFF])  // bf16 0xFFFF widened exactly
  }

  /// A row's extrema are taken on its 16-bit elements' own bits, sixteen at a time, then the
  /// elements left over: each place a row's extreme or NaN can sit must count.
  @Test(arguments: [FloatFormat.bf16, .fp16], [0, 15, 16, 31, 32, 36])
  func theExtremaOfARowAreFoundWhereverTheyAre(format: FloatFormat, place: Int) throws {
    let scheme = IntxScheme(source: format, bits: 4, granularity: .perRow)
    var values = (0..<37).map { Float($0 % 5) * 0.125 - 0.25 }
    values[place] = -3
    let scale = try #require(try quantize(scheme, values, shape: [1, 37])[.scale])
    let expected = format.round(Float(3) / 7.5)
    let bits = format == .bf16 ? BFloat16Conversion.bits(from: expected) : Float16Conversion.bits(from: expected)
    #expect(scale == [UInt8(truncatingIfNeeded: bits), UInt8(bits >> 8)])
    for nan in [Float.nan, -Float.nan] {
      values[place] = nan
      let parts = try quantize(scheme, values, shape: [1, 37])
      #expect(parts[.scale] == [0xFF, 0xFF], "\(nan) at \(place)")
      #expect(parts[.qdata] == [UInt8](repeating: 0, count: 37))
    }
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
