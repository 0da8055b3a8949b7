/// Exact conversions between `Float` and bfloat16 bit patterns, as torch does them on CPU.
public enum BFloat16Conversion {
  /// The bfloat16 nearest to `value`, ties to even; NaN becomes the quiet NaN `0x7FC0`.
  @inlinable
  public static func bits(from value: Float) -> UInt16 {
    if value.isNaN { return 0x7FC0 }
    let bits = value.bitPattern
    let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
  }

  /// The `Float` with the same value as the bfloat16 `bits` (exact).
  @inlinable
  public static func float(from bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
  }

  /// `value` rounded to bfloat16 (ties to even) and widened back, without branches so that loops
  /// over it vectorise; NaN stays NaN.
  @inlinable @inline(__always)
  public static func round(_ value: Float) -> Float {
    let bits = value.bitPattern
    let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
    let isNaN = bits & 0x7FFF_FFFF > 0x7F80_0000
    return Float(bitPattern: isNaN ? bits | 0x0040_0000 : rounded)
  }
}
