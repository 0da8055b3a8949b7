import Quantization
import Testing

@testable import Pipeline

/// The SIMD form of block FP8 dequantization gives the scalar rule's bits for every code and
/// scale, at every length and offset, in place as the input reads it.
@Suite struct Float8DequantizationTests {
  /// The scalar rule: `RNE_bf16(R_product(f32(code) × scale))`.
  static func expected(_ code: UInt8, scale: Float, product: FloatFormat) -> UInt16 {
    BFloat16Conversion.bits(from: product.round(Float8E4M3Conversion.float(from: code) * scale))
  }

  /// Scales of every kind: 1, powers of two, random normals (fixed seed), tiny ones whose
  /// products are subnormal or zero, huge ones that overflow, negative, zero, NaN, infinite,
  /// subnormal, and the edges of the SIMD lanes' range (|scale| < 2⁸).
  static let scales: [Float] = {
    var scales: [Float] = [1, 0.5, 2, 0x1p-7, 0x1p7, 0x1p-126, 0x1p-120, 0x1p-133, 0x1p-140, 0x1p-149, 0x1p-100]
    scales += [0x1.fffffep7, 0x1p8, 300, 0x1p119, 0x1p120, 3e38, .greatestFiniteMagnitude]
    scales += [0x1.8p-126, 0x1p-130, Float(bitPattern: 0x0000_48D0), Float(bitPattern: 1), Float(bitPattern: 0x007F_FFFF)]
    scales += [0, -0.0, .nan, -.nan, .infinity, -.infinity, Float(bitPattern: 0x7F80_0001)]
    scales += [1.0 / 448, 0.0123, 4.5 / 448, 1e-12, 1e-38]
    var generator = SpillTestData.Generator(state: 12)
    for _ in 0..<40 {
      // Exponents across the whole normal range, mantissas at random.
      let exponent = UInt32(generator.next() % 254 + 1)
      scales.append(Float(bitPattern: exponent << 23 | UInt32(truncatingIfNeeded: generator.next()) & 0x7F_FFFF))
    }
    return scales + scales.map { -$0 }
  }()

  /// Runs of codes: all 256 in order, the 254 that are not NaN (the lanes take those), and both
  /// at random (fixed seed).
  static let runs: [[UInt8]] = {
    let all = (0...255).map { UInt8($0) }
    let numbers = all.filter { $0 & 0x7F != 0x7F }
    var generator = SpillTestData.Generator(state: 3)
    return [all, numbers, all.shuffled(using: &generator), numbers.shuffled(using: &generator)]
  }()

  /// Dequantizes `codes` as the input does, the codes in the second half of the output, and
  /// returns the values.
  static func dequantizeInPlace(_ codes: [UInt8], scale: Float) -> [UInt16] {
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * codes.count, alignment: 16)
    defer { output.deallocate() }
    UnsafeMutableRawBufferPointer(rebasing: output[codes.count...]).copyBytes(from: codes)
    Float8Dequantization.bfloat16(
      UnsafeRawPointer(output.baseAddress!) + codes.count, count: codes.count, scale: scale,
      into: output.baseAddress!)
    return (0..<codes.count).map { output.load(fromByteOffset: 2 * $0, as: UInt16.self) }
  }

  @Test func everyCodeUnderEveryScaleGivesTheScalarRulesBits() {
    for scale in Self.scales {
      for run in Self.runs {
        let values = Self.dequantizeInPlace(run + run, scale: scale)
        for (code, value) in zip(run + run, values) {
          #expect(
            value == Self.expected(code, scale: scale, product: .fp32),
            "code \(code) scale \(scale) (\(String(scale.bitPattern, radix: 16)))")
        }
      }
    }
  }

  @Test(arguments: [FloatFormat.fp32, .bf16])
  func theValuesAreTheProductRoundedToBFloat16First(product: FloatFormat) {
    for scale in Self.scales {
      let run = Self.runs[1]
      let values = Self.dequantizeInPlace(run, scale: scale)
      #expect(values == run.map { Self.expected($0, scale: scale, product: product) }, "scale \(scale)")
    }
  }

  @Test func everyLengthAndOffsetGivesTheScalarRulesBits() {
    for scale: Float in [1, 0.0123, -0x1p-130, 0x1p100, .nan, .infinity] {
      for run in Self.runs {
        for offset in [0, 1, 3, 7, 15, 17, 33, 101] {
          for length in 0...40 {
            let codes = Array(run[offset..<offset + length])
            let values = Self.dequantizeInPlace(codes, scale: scale)
            #expect(
              values == codes.map { Self.expected($0, scale: scale, product: .fp32) },
              "scale \(scale) offset \(offset) length \(length)")
          }
        }
      }
    }
  }

  @Test func aNaNCodeAmongSixteenBecomesTheQuietNaN() {
    for position in 0..<32 {
      var codes = Array(Self.runs[1][40..<72])
      codes[position] = position % 2 == 0 ? 0x7F : 0xFF
      let values = Self.dequantizeInPlace(codes, scale: 0.0123)
      #expect(values[position] == 0x7FC0)
      #expect(values == codes.map { Self.expected($0, scale: 0.0123, product: .fp32) })
    }
  }
}
