/// Exact conversions between `Float` and fp4 e2m1 codes, as torchao's `f32_to_f4_unpacked` does
/// them.
///
/// The grid is {0, 0.5, 1, 1.5, 2, 3, 4, 6}, codes 0–7, with bit 3 as the sign. There is no NaN
/// or infinity.
public enum Float4E2M1Conversion {
  /// The e2m1 code (low 4 bits) nearest to `value`, ties to the even code; |x| ≥ 6 saturates to 6;
  /// the sign is kept, so −0 gives `0x8`; NaN gives code 0 with its sign bit (torchao's
  /// comparisons all fail on NaN).
  @inlinable @inline(__always)
  public static func bits(from value: Float) -> UInt8 {
    UInt8(truncatingIfNeeded: code(value))
  }

  /// ``bits(from:)`` as an `Int32`, computed on the bit pattern with selects only (a chain of
  /// float compares would become a branch tree), so loops vectorise.
  @inlinable @inline(__always)
  static func code(_ value: Float) -> Int32 {
    let bits = value.bitPattern
    let magnitude = Int32(bitPattern: bits & 0x7FFF_FFFF)
    // Below 1: adding 2²² makes the FPU round (ties to even) at the 0.5 step: codes 0, 1, 2.
    let small = Int32(bitPattern: (Float(bitPattern: UInt32(bitPattern: magnitude)) + 0x1p22).bitPattern) &- (149 << 23)
    // From 1 up: keep 1 mantissa bit with ties to even and rebias the exponent from 127 to 1.
    let normal = (magnitude &- (126 << 23) &+ 0x1F_FFFF &+ ((magnitude >> 22) & 1)) >> 22
    var code = magnitude < (127 << 23) ? small : normal
    code = code > 7 ? 7 : code
    code = magnitude > 0x7F80_0000 ? 0 : code
    return code | Int32(bitPattern: (bits >> 28) & 0x8)
  }

  /// The value of the e2m1 code in the low 4 bits of `bits` (exact; the high bits are ignored).
  @inlinable
  public static func float(from bits: UInt8) -> Float {
    let magnitude: Float =
      switch bits & 7 {
      case 0: 0
      case 1: 0.5
      case 2: 1
      case 3: 1.5
      case 4: 2
      case 5: 3
      case 6: 4
      default: 6
      }
    return bits & 8 != 0 ? -magnitude : magnitude
  }
}
