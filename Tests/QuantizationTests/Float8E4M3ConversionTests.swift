import Quantization
import Testing

@Suite struct Float8E4M3ConversionTests {
  /// The value of a finite code by the format's definition.
  static func definedValue(_ code: UInt8) -> Double {
    let exponent = Int(code >> 3) & 15
    let mantissa = Double(code & 7)
    let magnitude =
      exponent == 0
      ? mantissa * 0x1p-9 : (1 + mantissa / 8) * Double(sign: .plus, exponent: exponent - 7, significand: 1)
    return code & 0x80 != 0 ? -magnitude : magnitude
  }

  /// The nearest non-negative finite code to |value| (ties to the even code), saturating above 464.
  static func nearestCode(_ value: Float) -> UInt8 {
    let magnitude = Double(value.magnitude)
    if magnitude > 464 { return 0x7E }
    var best: UInt8 = 0
    for code in UInt8(1)...0x7E {
      let distance = abs(definedValue(code) - magnitude)
      let bestDistance = abs(definedValue(best) - magnitude)
      if distance < bestDistance || (distance == bestDistance && code & 1 == 0) { best = code }
    }
    return best
  }

  @Test func everyCodeDecodesToItsDefinedValueAndEncodesBack() {
    for code in 0...UInt8.max {
      let value = Float8E4M3Conversion.float(from: code)
      if code & 0x7F == 0x7F {
        #expect(value.isNaN)
        #expect(Float8E4M3Conversion.bits(from: value) & 0x7F == 0x7F)
        continue
      }
      #expect(Double(value) == Self.definedValue(code) && value.sign == (code & 0x80 != 0 ? .minus : .plus))
      #expect(Float8E4M3Conversion.bits(from: value) == code)
    }
  }

  @Test func encodingRoundsToNearestEvenAroundEveryMidpoint() {
    for code in UInt8(0)..<0x7E {
      let midpoint = Float((Self.definedValue(code) + Self.definedValue(code + 1)) / 2)
      for value in [midpoint.nextDown, midpoint, midpoint.nextUp] {
        #expect(Float8E4M3Conversion.bits(from: value) == Self.nearestCode(value))
        #expect(Float8E4M3Conversion.bits(from: -value) == Self.nearestCode(value) | 0x80)
      }
    }
  }

  @Test func encodingMatchesTheNearestCodeOverAStridedSweepOfAllFloats() {
    for step in 0..<8192 {
      let value = Float(bitPattern: UInt32(step) &* 524_309)
      guard !value.isNaN else { continue }
      let sign: UInt8 = value.sign == .minus ? 0x80 : 0
      #expect(Float8E4M3Conversion.bits(from: value) == Self.nearestCode(value) | sign)
    }
  }

  @Test func encodingSaturatesAndKeepsSpecials() {
    #expect(Float8E4M3Conversion.bits(from: 448) == 0x7E)
    #expect(Float8E4M3Conversion.bits(from: 464) == 0x7E)
    #expect(Float8E4M3Conversion.bits(from: 464.0001) == 0x7E)
    #expect(Float8E4M3Conversion.bits(from: 1e10) == 0x7E)
    #expect(Float8E4M3Conversion.bits(from: .infinity) == 0x7E)
    #expect(Float8E4M3Conversion.bits(from: -.infinity) == 0xFE)
    #expect(Float8E4M3Conversion.bits(from: .nan) == 0x7F)
    #expect(Float8E4M3Conversion.bits(from: -.nan) == 0xFF)
    #expect(Float8E4M3Conversion.bits(from: -0.0) == 0x80)
    // Subnormals: 2⁻¹⁰ ties to 0, 1.5·2⁻⁹ ties up to 2·2⁻⁹.
    #expect(Float8E4M3Conversion.bits(from: 0x1p-10) == 0x00)
    #expect(Float8E4M3Conversion.bits(from: 0x1.8p-9) == 0x02)
    #expect(Float8E4M3Conversion.bits(from: 0x1p-6) == 0x08)
  }
}
