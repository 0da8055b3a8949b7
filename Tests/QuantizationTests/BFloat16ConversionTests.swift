import Quantization
import Testing

@Suite struct BFloat16ConversionTests {
  @Test func everyBFloat16SurvivesARoundTripThroughFloat() {
    for bits in 0...UInt16.max {
      let value = BFloat16Conversion.float(from: bits)
      if value.isNaN { continue }
      #expect(BFloat16Conversion.bits(from: value) == bits)
    }
  }

  @Test func floatRoundsToNearestEvenBFloat16() {
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
    #expect(BFloat16Conversion.bits(from: 1 + 0x1p-8) == 0x3F80)
    // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to the even one (1 + 2^-6).
    #expect(BFloat16Conversion.bits(from: 1 + 3 * 0x1p-8) == 0x3F82)
    // Just above the tie rounds up.
    #expect(BFloat16Conversion.bits(from: Float(bitPattern: 0x3F80_8001)) == 0x3F81)
    #expect(BFloat16Conversion.bits(from: -0.0) == 0x8000)
    #expect(BFloat16Conversion.bits(from: .infinity) == 0x7F80)
    #expect(BFloat16Conversion.bits(from: .nan) == 0x7FC0)
    // The largest float rounds to infinity, as torch does.
    #expect(BFloat16Conversion.bits(from: .greatestFiniteMagnitude) == 0x7F80)
  }
}

@Suite struct BFloat16RoundingTests {
  @Test func roundingToBFloat16AgreesWithTheBitConversionAroundEveryMidpoint() {
    for bits in 0..<UInt16(0x7F80) {
      // The midpoint between `bits` and the next bfloat16, and its fp32 neighbours.
      let midpoint = UInt32(bits) << 16 | 0x8000
      for candidate in [midpoint - 1, midpoint, midpoint + 1] {
        for value in [Float(bitPattern: candidate), -Float(bitPattern: candidate)] {
          let expected = BFloat16Conversion.float(from: BFloat16Conversion.bits(from: value))
          #expect(BFloat16Conversion.round(value).bitPattern == expected.bitPattern)
        }
      }
    }
  }

  @Test func roundingToBFloat16KeepsNaNAndInfinity() {
    #expect(BFloat16Conversion.round(.nan).isNaN)
    #expect(BFloat16Conversion.round(.infinity) == .infinity)
    #expect(BFloat16Conversion.round(-.greatestFiniteMagnitude) == -.infinity)
    #expect(BFloat16Conversion.round(-0.0).bitPattern == 0x8000_0000)
  }
}
