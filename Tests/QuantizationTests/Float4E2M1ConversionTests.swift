import Quantization
import Testing

@Suite struct Float4E2M1ConversionTests {
  static let grid: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]

  @Test func everyCodeDecodesToTheGridAndEncodesBack() {
    for code in UInt8(0)..<16 {
      let value = Float4E2M1Conversion.float(from: code)
      #expect(value.magnitude == Self.grid[Int(code & 7)])
      #expect(value.sign == (code & 8 != 0 ? .minus : .plus))
      #expect(Float4E2M1Conversion.bits(from: value) == code)
    }
  }

  @Test(arguments: [
    (Float(0.25), UInt8(0)), (0.75, 2), (1.25, 2), (1.75, 4), (2.5, 4), (3.5, 6), (5, 6),
    (0.2500001, 1), (0.7499999, 1), (5.0000005, 7),
  ])
  func tiesGoToTheEvenCode(value: Float, code: UInt8) {
    #expect(Float4E2M1Conversion.bits(from: value) == code)
    #expect(Float4E2M1Conversion.bits(from: -value) == code | 8)
  }

  @Test func encodingMatchesTheNearestGridValueOverAStridedSweepOfAllFloats() {
    for step in 0..<16384 {
      let value = Float(bitPattern: UInt32(step) &* 262_147)
      guard !value.isNaN else { continue }
      // The nearest grid value, ties to the even code, saturating at 6.
      var best = 0
      for code in 1..<8 {
        let distance = abs(Double(Self.grid[code]) - Double(value.magnitude))
        let bestDistance = abs(Double(Self.grid[best]) - Double(value.magnitude))
        if distance < bestDistance || (distance == bestDistance && code % 2 == 0) { best = code }
      }
      if value.magnitude >= 6 { best = 7 }
      let sign: UInt8 = value.sign == .minus ? 8 : 0
      #expect(Float4E2M1Conversion.bits(from: value) == UInt8(best) | sign)
    }
  }

  @Test func encodingSaturatesAndKeepsTheSign() {
    #expect(Float4E2M1Conversion.bits(from: 6) == 7)
    #expect(Float4E2M1Conversion.bits(from: 1000) == 7)
    #expect(Float4E2M1Conversion.bits(from: -.infinity) == 0xF)
    #expect(Float4E2M1Conversion.bits(from: -0.0) == 0x8)
    #expect(Float4E2M1Conversion.bits(from: .nan) == 0)
  }
}
