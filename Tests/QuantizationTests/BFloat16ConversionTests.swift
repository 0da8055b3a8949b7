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
