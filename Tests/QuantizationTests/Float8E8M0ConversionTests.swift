import Quantization
import Testing

@Suite struct Float8E8M0ConversionTests {
  @Test func everyByteDecodesToItsPowerOfTwoAndEncodesBack() {
    for byte in UInt8(0)..<255 {
      let value = Float8E8M0Conversion.float(from: byte)
      #expect(Double(value) == Double(sign: .plus, exponent: Int(byte) - 127, significand: 1))
      #expect(Float8E8M0Conversion.bits(from: value) == byte)
    }
  }

  @Test func byte255IsNaNAndNonPowersHaveNoByte() {
    #expect(Float8E8M0Conversion.float(from: 255).isNaN)
    #expect(Float8E8M0Conversion.bits(from: 3) == nil)
    #expect(Float8E8M0Conversion.bits(from: -2) == nil)
    #expect(Float8E8M0Conversion.bits(from: 0) == nil)
    #expect(Float8E8M0Conversion.bits(from: .infinity) == nil)
    #expect(Float8E8M0Conversion.bits(from: 0x1p-128) == nil)
  }
}
