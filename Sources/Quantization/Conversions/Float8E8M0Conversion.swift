/// Exact conversions of float8 e8m0fnu bytes (MX block scales): an unsigned power of two
/// `2^(byte − 127)`, with `0xFF` as NaN.
public enum Float8E8M0Conversion {
  /// The value of the e8m0fnu byte `bits` (exact): `2^(bits − 127)`, so `0` is 2⁻¹²⁷ (a float
  /// subnormal); `255` is NaN.
  @inlinable
  public static func float(from bits: UInt8) -> Float {
    switch bits {
    case 255: .nan
    case 0: 0x1p-127
    default: Float(bitPattern: UInt32(bits) << 23)
    }
  }

  /// The e8m0fnu byte of `value` when it is a power of two from 2⁻¹²⁷ to 2¹²⁷, else `nil`.
  @inlinable
  public static func bits(from value: Float) -> UInt8? {
    if value == 0x1p-127 { return 0 }
    let bits = value.bitPattern
    guard bits & 0x807F_FFFF == 0, bits >> 23 >= 1, bits >> 23 <= 254 else { return nil }
    return UInt8(bits >> 23)
  }
}
