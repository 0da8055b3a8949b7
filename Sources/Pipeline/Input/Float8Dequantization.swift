import Quantization

/// Float8 e4m3fn codes times one scale, rounded to bfloat16: the inner loop of block-scaled FP8
/// inputs (``QuantizedInput``), sixteen codes at a time on SIMD lanes.
///
/// The lanes compute what the scalar rule computes, bit for bit, without a table: a code's sign
/// and its seven exponent and mantissa bits, put in place in a Float32 (`code & 0x7F` shifted left
/// by 20), are its value times 2⁻¹²⁰, subnormal codes included; times `scale × 2¹²⁰` (exact while
/// |scale| < 2⁸) that is the exact product of value and scale, rounded once by one IEEE multiply,
/// as `value × scale` is; then bfloat16 round-to-nearest-even on the bits, as
/// ``BFloat16Conversion/bits(from:)`` does it.
enum Float8Dequantization {
  /// Writes `RNE_bf16(Float32(e4m3fn(codes[i])) ×_f32 scale)` of `count` codes as little-endian
  /// bfloat16 bit patterns: the same bits as `BFloat16Conversion.bits(from:
  /// Float8E4M3Conversion.float(from: code) * scale)`, and as with the product first rounded to
  /// bfloat16 (`FloatFormat.bf16.round`), which changes nothing that is rounded to bfloat16 after.
  ///
  /// Sixteen codes at a time go through SIMD lanes when |scale| < 2⁸ and no code is NaN
  /// (`0x7F`, `0xFF`; the lanes leave NaN out, and a larger scale times 2¹²⁰ would overflow); the
  /// remaining codes, and all codes otherwise, go through the scalar rule. The lanes multiply the
  /// subnormal e4m3fn codes as Float32 subnormals, which some CPUs multiply slowly; weights have
  /// few of them.
  ///
  /// - Parameters:
  ///   - codes: The e4m3fn bytes. They may lie inside `output`'s bytes, from `count` bytes past
  ///     its start on (the caller reads them into the second half of its output): every sixteen
  ///     codes are read before their values are written, and no value overwrites a code not yet
  ///     read.
  ///   - count: The number of codes, and of values written.
  ///   - scale: The Float32 scale of every code.
  ///   - output: Where the `2 × count` bytes of values go; any alignment.
  static func bfloat16(_ codes: UnsafeRawPointer, count: Int, scale: Float, into output: UnsafeMutableRawPointer) {
    var start = 0
    let vectors = count / 16
    if abs(scale) < 0x1p8 && !hasNaN(codes, vectors: vectors) {
      let scaled = SIMD16<Float>(repeating: scale * 0x1p120)
      for vector in 0..<vectors {
        let code = codes.loadUnaligned(fromByteOffset: 16 &* vector, as: SIMD16<UInt8>.self)
        let shifted = SIMD16<Int32>(truncatingIfNeeded: code) &<< 24
        let bits = ((shifted &>> 4) & 0x07F0_0000) | (shifted & Int32.min)
        let product = unsafeBitCast(unsafeBitCast(bits, to: SIMD16<Float>.self) * scaled, to: SIMD16<Int32>.self)
        // Arithmetic shifts keep the rounded halves within Int16, so they narrow in one pack.
        let rounded = (product &+ 0x7FFF &+ ((product &>> 16) & 1)) &>> 16
        // Lanes are stored in memory order, each in the machine's byte order: little-endian on
        // the targets safeshard builds for (x86-64, arm64).
        output.storeBytes(
          of: SIMD16<Int16>(truncatingIfNeeded: rounded), toByteOffset: 32 &* vector, as: SIMD16<Int16>.self)
      }
      start = 16 * vectors
    }
    for index in start..<count {
      let value = Float8E4M3Conversion.float(from: codes.load(fromByteOffset: index, as: UInt8.self)) * scale
      output.storeBytes(
        of: BFloat16Conversion.bits(from: value).littleEndian, toByteOffset: 2 &* index, as: UInt16.self)
    }
  }

  /// Whether any of the first `16 × vectors` codes is NaN (`0x7F` or `0xFF`): only a NaN's
  /// magnitude plus one reaches `0x80`.
  private static func hasNaN(_ codes: UnsafeRawPointer, vectors: Int) -> Bool {
    var carries = SIMD16<UInt8>()
    for vector in 0..<vectors {
      carries |= (codes.loadUnaligned(fromByteOffset: 16 &* vector, as: SIMD16<UInt8>.self) & 0x7F) &+ 1
    }
    return (carries & 0x80) != SIMD16()
  }
}
