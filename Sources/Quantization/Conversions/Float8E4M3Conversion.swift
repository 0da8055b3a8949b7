/// Exact conversions between `Float` and float8 e4m3fn bytes, as torch 2.15 does them on CPU.
///
/// e4m3fn has a sign, 4 exponent bits (bias 7) and 3 mantissa bits; no infinity; `0x7F`/`0xFF`
/// are NaN; ±448 (`0x7E`/`0xFE`) is the largest finite value; subnormals are multiples of 2⁻⁹.
public enum Float8E4M3Conversion {
  /// The largest finite value, 448.
  public static let greatestFiniteMagnitude: Float = 448

  /// The e4m3fn byte nearest to `value`, ties to even (`tensor.to(torch.float8_e4m3fn)`).
  ///
  /// Magnitudes that would round above 448 (every |x| > 464, and ±inf) saturate to ±448, as in
  /// torch 2.15; NaN gives `0x7F` with the sign kept; −0 gives `0x80`.
  @inlinable @inline(__always)
  public static func bits(from value: Float) -> UInt8 {
    let bits = value.bitPattern
    let magnitude = Int32(bitPattern: bits & 0x7FFF_FFFF)
    let sign = Int32(bitPattern: (bits >> 24) & 0x80)
    var code = magnitudeCode(magnitude)
    code = code > 0x7E ? 0x7E : code
    code = magnitude > 0x7F80_0000 ? 0x7F : code
    return UInt8(truncatingIfNeeded: code | sign)
  }

  /// The e4m3fn code of the fp32 magnitude bits `magnitude` (≤ 448 after rounding; larger values
  /// give codes above `0x7E` that callers saturate). Branch-free, so loops vectorise.
  @inlinable @inline(__always)
  static func magnitudeCode(_ magnitude: Int32) -> Int32 {
    // Below 2⁻⁶: adding 2¹⁴ makes the FPU round (ties to even) at the 2⁻⁹ subnormal step.
    let subnormal =
      Int32(bitPattern: (Float(bitPattern: UInt32(bitPattern: magnitude)) + 0x1p14).bitPattern) &- (141 << 23)
    let normal = (magnitude &- (120 << 23) &+ 0x7FFFF &+ ((magnitude >> 20) & 1)) >> 20
    return magnitude < (121 << 23) ? subnormal : normal
  }

  /// The value of the e4m3fn byte `bits` (exact); `0x7F` and `0xFF` are NaN.
  @inlinable @inline(__always)
  public static func float(from bits: UInt8) -> Float {
    let exponent = UInt32(bits >> 3) & 15
    let mantissa = UInt32(bits & 7)
    let normal = Float(bitPattern: ((exponent + 120) << 23) | (mantissa << 20))
    let magnitude = exponent == 0 ? Float(mantissa) * 0x1p-9 : normal
    let value = bits & 0x7F == 0x7F ? Float.nan : magnitude
    return bits & 0x80 != 0 ? -value : value
  }
}
