import Quantization
import Testing

@Suite struct Float16ConversionTests {
  @Test func everyFloat16SurvivesARoundTripThroughFloat() {
    for bits in 0...UInt16.max {
      let value = Float16Conversion.float(from: bits)
      if bits & 0x7C00 == 0x7C00 && bits & 0x03FF != 0 {
        #expect(value.isNaN)
        continue
      }
      #expect(Float16Conversion.bits(from: value) == bits)
    }
  }

  @Test func everyFloat16WidensToItsIEEEValue() {
    for bits in 0...UInt16.max {
      let exponent = Int(bits >> 10) & 31
      let mantissa = Double(bits & 0x3FF)
      let magnitude: Double =
        exponent == 0
        ? mantissa * 0x1p-24
        : exponent == 31
          ? (mantissa == 0 ? .infinity : .nan)
          : (1 + mantissa / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
      let expected = bits & 0x8000 != 0 ? -magnitude : magnitude
      let value = Float16Conversion.float(from: bits)
      #expect(value.isNaN ? expected.isNaN : Double(value) == expected && value.sign == expected.sign)
    }
  }

  @Test func floatRoundsToNearestEvenFloat16AroundEveryMidpoint() {
    // Below 2¹⁶ every float16 midpoint is exact in fp32; check it and its fp32 neighbours.
    for bits in UInt16(0)..<0x7C00 {
      let low = Double(Float16Conversion.float(from: bits))
      // Past the largest finite value the next step would be 2¹⁶, so the midpoint is 65520.
      let high = bits == 0x7BFF ? 65536 : Double(Float16Conversion.float(from: bits + 1))
      let midpoint = Float((low + high) / 2)
      let evenIsLow = bits & 1 == 0
      for (value, expected) in [
        (midpoint.nextDown, bits), (midpoint, evenIsLow ? bits : bits + 1), (midpoint.nextUp, bits + 1),
      ] {
        #expect(Float16Conversion.bits(from: value) == expected)
        #expect(Float16Conversion.bits(from: -value) == expected | 0x8000)
        #expect(Float16Conversion.round(value) == Float16Conversion.float(from: expected))
      }
    }
  }

  @Test func floatToFloat16HandlesTheEdges() {
    #expect(Float16Conversion.bits(from: 65504) == 0x7BFF)
    #expect(Float16Conversion.bits(from: 65519.996) == 0x7BFF)
    #expect(Float16Conversion.bits(from: 65520) == 0x7C00)
    #expect(Float16Conversion.bits(from: -.infinity) == 0xFC00)
    #expect(Float16Conversion.bits(from: .nan) == 0x7E00)
    #expect(Float16Conversion.bits(from: -.nan) == 0xFE00)
    #expect(Float16Conversion.bits(from: -0.0) == 0x8000)
    // 2⁻²⁵ is halfway between 0 and the smallest subnormal: ties to even give 0.
    #expect(Float16Conversion.bits(from: 0x1p-25) == 0)
    #expect(Float16Conversion.bits(from: 0x1.8p-24) == 2)
    #expect(Float16Conversion.bits(from: 0x1p-30) == 0)
    #expect(Float16Conversion.round(0x1p-14) == 0x1p-14)
    #expect(Float16Conversion.round(.nan).isNaN)
    #expect(Float16Conversion.round(70000) == .infinity)
  }
}
