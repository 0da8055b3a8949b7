/// Exact conversions between `Float` and IEEE binary16 bit patterns, as torch does them on CPU
/// (c10 `fp16_ieee_from_fp32_value` / `fp16_ieee_to_fp32_value`).
public enum Float16Conversion {
  /// The binary16 nearest to `value`, ties to even, including subnormals; magnitudes from 65520 up
  /// become ±inf; NaN becomes `0x7E00` with the sign kept.
  @inlinable
  public static func bits(from value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let magnitude = bits & 0x7FFF_FFFF
    if magnitude > 0x7F80_0000 { return sign | 0x7E00 }
    let rounded = roundedMagnitude(magnitude)
    if rounded >= 0x7F80_0000 { return sign | 0x7C00 }
    if rounded < 0x3880_0000 {
      // A multiple of 2⁻²⁴ below 2⁻¹⁴: the subnormal's mantissa is the multiple itself.
      return sign | UInt16(Float(bitPattern: rounded) * 0x1p24)
    }
    return sign | UInt16(truncatingIfNeeded: (rounded >> 13) &- (112 << 10))
  }

  /// The `Float` with the same value as the binary16 `bits` (exact; NaN stays NaN).
  @inlinable @inline(__always)
  public static func float(from bits: UInt16) -> Float {
    let half = UInt32(bits)
    let shifted = (half & 0x7FFF) << 13
    let exponent = shifted & 0x0F80_0000
    let normal = shifted &+ (112 << 23)
    let special = normal &+ (112 << 23)
    // Subnormals: put the mantissa under exponent 2⁻¹⁴ and subtract the implicit bit.
    let subnormal = (Float(bitPattern: normal &+ (1 << 23)) - 0x1p-14).bitPattern
    let magnitude = exponent == 0x0F80_0000 ? special : (exponent == 0 ? subnormal : normal)
    return Float(bitPattern: magnitude | ((half & 0x8000) << 16))
  }

  /// `value` rounded to binary16 (ties to even, subnormals included, overflow to ±inf) and widened
  /// back, without branches so that loops over it vectorise; NaN stays NaN.
  @inlinable @inline(__always)
  public static func round(_ value: Float) -> Float {
    let bits = value.bitPattern
    let magnitude = bits & 0x7FFF_FFFF
    let rounded = roundedMagnitude(magnitude)
    let result = magnitude > 0x7F80_0000 ? magnitude | 0x0040_0000 : rounded
    return Float(bitPattern: result | (bits & 0x8000_0000))
  }

  /// The fp32 bit pattern of the finite or infinite magnitude `magnitude` rounded to binary16.
  @inlinable @inline(__always)
  static func roundedMagnitude(_ magnitude: UInt32) -> UInt32 {
    let normal = (magnitude &+ 0xFFF &+ ((magnitude >> 13) & 1)) & 0xFFFF_E000
    // Below 2⁻¹⁴ the binary16 step is 2⁻²⁴, which is the fp32 step just above 0.5.
    let subnormal = ((Float(bitPattern: magnitude) + 0.5) - 0.5).bitPattern
    let rounded = magnitude < 0x3880_0000 ? subnormal : normal
    return rounded > 0x477F_E000 ? 0x7F80_0000 : rounded
  }
}
