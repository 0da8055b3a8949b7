/// The intx element loop, specialised per product format (``FormatRounding``).
enum IntxCodes {
  /// `clamp(R_pdt(rint(R_pdt(x ⊗ reciprocal)) + zeroPoint), qmin, qmax)` for each of `count`
  /// elements of `source` at `values` (little-endian, any alignment; widened exactly), with `pdt` =
  /// `product`.
  ///
  /// The outer `R_pdt` is left out: it cannot change a code. Rounding is monotonic and leaves
  /// every integer of magnitude up to 256 as it is (bf16 has 8 significant bits), so a sum inside
  /// `[qmin, qmax]` (at most 128 in magnitude) stays the same and one outside stays outside, where
  /// the clamp gives the same bound; NaN stays NaN with the same bits, which are already quiet.
  static func quantize(
    _ values: UnsafeRawPointer, count: Int, source: FloatFormat, reciprocal: Float, zeroPoint: Float, qmin: Float,
    qmax: Float, product: FloatFormat, into codes: UnsafeMutableBufferPointer<Int8>
  ) {
    switch product {
    case .bf16: quantize(BFloat16Rounding.self, values, count, source, reciprocal, zeroPoint, qmin, qmax, codes)
    case .fp16: quantize(Float16Rounding.self, values, count, source, reciprocal, zeroPoint, qmin, qmax, codes)
    case .fp32: quantize(Float32Rounding.self, values, count, source, reciprocal, zeroPoint, qmin, qmax, codes)
    }
  }

  @inline(__always)
  private static func quantize<Rounding: FormatRounding>(
    _: Rounding.Type, _ values: UnsafeRawPointer, _ count: Int, _ source: FloatFormat, _ reciprocal: Float,
    _ zeroPoint: Float, _ qmin: Float, _ qmax: Float, _ buffer: UnsafeMutableBufferPointer<Int8>
  ) {
    guard let codes = buffer.baseAddress else { return }
    RowKernels.forEachValue(values, count: count, format: source) { index, value in
      let product = Rounding.round(value * reciprocal)
      let shifted = IntegerRounding.rint(product) + zeroPoint
      codes[index] = Int8(truncatingIfNeeded: IntegerRounding.int32(IntegerRounding.clamp(shifted, qmin, qmax)))
    }
  }
}
