/// Round-to-nearest-even of floats to integers with float adds and integer subtraction only (the
/// "magic number" method), which vectorises where `Int(x.rounded())` and SIMD conversions do not.
enum IntegerRounding {
  /// 1.5·2²³: adding it to |v| < 2²² leaves `v` rounded to an integer, ties to even, in the low
  /// mantissa bits.
  static let magic: Float = 0x1.8p23

  /// `v` rounded to the nearest integer, ties to even (`torch.round`/`rint`), as a `Float`; exact
  /// for |v| < 2²².
  @inline(__always)
  static func rint(_ value: Float) -> Float {
    (value + magic) - magic
  }

  /// `v` rounded to the nearest integer, ties to even, as an `Int32`; `v` must lie in (−2²², 2²²),
  /// which callers ensure by clamping first (a NaN gives an unspecified value, never a trap).
  @inline(__always)
  static func int32(_ value: Float) -> Int32 {
    Int32(bitPattern: (value + magic).bitPattern) &- Int32(bitPattern: magic.bitPattern)
  }

  /// `value` clamped to `[low, high]`; NaN passes through, as `torch.clamp` does.
  @inline(__always)
  static func clamp(_ value: Float, _ low: Float, _ high: Float) -> Float {
    let raised = value < low ? low : value
    return raised > high ? high : raised
  }
}
