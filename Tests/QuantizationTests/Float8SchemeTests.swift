import Quantization
import Testing

@Suite struct Float8SchemeTests {
  @Test func partsHaveTorchAOsShapesAndTypes() throws {
    let layout = try Float8Scheme(source: .bf16).outputLayout(shape: [2, 16, 64])
    #expect(layout.parts.map(\.name) == [.qdata, .scale])
    #expect(layout.parts.map(\.elementType) == [.f8e4m3, .f32])
    #expect(layout.parts.map(\.shape) == [[2, 16, 64], [2, 16, 1]])
  }

  @Test func anAllZeroRowGetsScaleZeroAndNaNCodesAsInTorchAO() throws {
    let parts = try quantize(Float8Scheme(source: .bf16), [0, -0.0, 0, 0, 448, -1, 0, -0.0], shape: [2, 4])
    #expect(parts[.scale] == Buffers.bytes([0, 1], as: .fp32))
    #expect(parts[.qdata] == [0xFF, 0xFF, 0xFF, 0xFF, 0x7E, 0xB8, 0x00, 0x80])
  }

  /// The kernel takes a shorter path when the scale is positive and normal (every quotient is then
  /// finite): every finite bf16 and fp16 value, 256 to a row in order of their bits (rows of every
  /// magnitude, down to those whose bf16 scale is subnormal) or spread over the rows (every row
  /// spans many magnitudes), then an all-zero row (scale 0), against torchao's formula with the
  /// scale stored.
  @Test(arguments: [FloatFormat.bf16, .fp16], [false, true])
  func everyFiniteValueGetsTheCodeOfTorchAOsFormula(format: FloatFormat, spread: Bool) throws {
    var finite = (0...UInt16.max).map {
      format == .bf16 ? BFloat16Conversion.float(from: $0) : Float16Conversion.float(from: $0)
    }.filter(\.isFinite)
    finite += [Float](repeating: 0, count: (256 - finite.count % 256) % 256)
    // 40,499 is a prime that divides neither count (65,280 and 63,488), so this visits every
    // value once.
    var values = spread ? finite.indices.map { finite[$0 * 40499 % finite.count] } : finite
    #expect(Set(values.map(\.bitPattern)) == Set(finite.map(\.bitPattern)))
    values += [Float](repeating: 0, count: 256)
    let shape = [values.count / 256, 256]
    let parts = try quantize(Float8Scheme(source: format), values, shape: shape)
    let (qdata, scales) = try (#require(parts[.qdata]), Buffers.floats(#require(parts[.scale]), as: .fp32))
    var mismatches = 0
    for index in values.indices {
      let quotient = values[index] / scales[index / 256]
      let clamped = quotient < -448 ? -448 : quotient > 448 ? 448 : quotient
      let code: UInt8 = quotient.isNaN ? 0xFF : Float8E4M3Conversion.bits(from: clamped)
      if qdata[index] != code { mismatches += 1 }
    }
    #expect(mismatches == 0, "\(mismatches) of \(values.count) codes differ")
    // Both paths ran: rows with a positive normal scale, and rows without one.
    #expect(scales.contains { $0.isNormal } && scales.last == 0)
  }

  @Test func fp16ScalesUnderflowForTinyRows() throws {
    // amax 3e-5: the fp16 scale is the smallest subnormal 2⁻²⁴, so 3e-5 saturates to 448.
    let small = try quantize(Float8Scheme(source: .fp16), [3e-5, -1e-5], shape: [1, 2])
    #expect(small[.scale] == Buffers.bytes([0x1p-24], as: .fp32))
    #expect(small[.qdata]?.first == 0x7E)
    // amax 1e-5: the scale underflows to 0; non-zeros saturate and zeros become NaN.
    let zero = try quantize(Float8Scheme(source: .fp16), [1e-5, -1e-5, 0, 0], shape: [1, 4])
    #expect(zero[.scale] == Buffers.bytes([0], as: .fp32))
    #expect(zero[.qdata] == [0x7E, 0xFE, 0xFF, 0xFF])
  }

  @Test func perTensorScalesComeFromTheStatistic() throws {
    let scheme = Float8Scheme(source: .fp32, granularity: .perTensor)
    let parts = try quantize(scheme, [1, 2, -896, 4], shape: [2, 2])
    #expect(parts[.scale] == Buffers.bytes([2], as: .fp32))
    #expect(parts[.qdata]?[2] == 0xFE)
  }

  @Test func aGroupSizeThatDoesNotDivideKIsRefused() {
    #expect(
      errorCode { _ = try Float8Scheme(source: .bf16, granularity: .perGroup(64)).outputLayout(shape: [16, 96]) }
        == .unsupportedShape)
  }
}
