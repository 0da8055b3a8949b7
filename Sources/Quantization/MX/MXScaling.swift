/// How an MX block's e8m0 scale is chosen from its largest magnitude (torchao
/// `ScaleCalculationMode`).
public enum MXScaling: String, Sendable, CaseIterable, Hashable {
  /// The config default: the smallest power of two `2^E ≥ amax ⊘ P`, `E = ceil(log2(amax ⊘ P))`
  /// clamped to [−127, 127]; elements are multiplied by `2^−E` (by 1 when the byte is 0) and
  /// clamped to ±P.
  case rceil = "RCEIL"
  /// The bare `to_mx` default: `E = clamp(exponent(amax) − offset, −127, 128)` (offset 8 for e4m3,
  /// 2 for e2m1); elements are divided by `max(2^E, 2⁻¹²⁶)`.
  case floor = "FLOOR"

  /// The e8m0 byte of a block whose largest magnitude is `amax`.
  ///
  /// RCEIL uses the exact `ceil(log2)`, which torch's fp32 `log2f` matches for every bf16 amax;
  /// NaN gives 255 and infinity 254. FLOOR gives 255 for NaN.
  func scaleByte(amax: Float, element: MXElement) -> UInt8 {
    switch self {
    case .rceil:
      let quotient = amax / element.greatestFiniteMagnitude
      if quotient.isNaN { return 255 }
      if quotient == .infinity { return 254 }
      if quotient == 0 { return 0 }
      let bits = quotient.bitPattern
      let exponent = Int(bits >> 23)
      let mantissa = bits & 0x7F_FFFF
      // A subnormal quotient is mantissa·2⁻¹⁴⁹.
      let ceilLog2 =
        exponent > 0
        ? exponent - 127 + (mantissa != 0 ? 1 : 0)
        : (32 - (mantissa - 1).leadingZeroBitCount) - 149
      return UInt8(min(max(ceilLog2, -127), 127) + 127)
    case .floor:
      if amax.isNaN { return 255 }
      let exponent = Int((amax.bitPattern >> 23) & 0xFF) - 127 - element.floorExponentOffset
      return UInt8(min(max(exponent, -127), 128) + 127)
    }
  }
}
