/// The element loops of the MX and NVFP4 schemes: read a block of input in its own format, scale
/// it, clamp, and encode to e4m3fn bytes or e2m1 codes (then packed two per byte), with no row of
/// `Float`s in between (``RowKernels/forEachValue(_:count:format:_:)``).
enum ElementEncoding {
  /// `e4m3fn(clamp(x ⊗ multiplier, −448, 448))` for each of `count` values of `format` at
  /// `values`.
  @inline(__always)
  static func float8(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, multiplier: Float,
    into codes: UnsafeMutablePointer<UInt8>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Float8E4M3Conversion.bits(from: IntegerRounding.clamp(value * multiplier, -448, 448))
    }
  }

  /// `e4m3fn(clamp(x ⊘ divisor, −448, 448))` for each of `count` values of `format` at `values`.
  @inline(__always)
  static func float8(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, divisor: Float, into codes: UnsafeMutablePointer<UInt8>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Float8E4M3Conversion.bits(from: IntegerRounding.clamp(value / divisor, -448, 448))
    }
  }

  /// The e2m1 code of `clamp(x ⊗ multiplier, −6, 6)` for each of `count` values of `format` at
  /// `values`, into `codes` (``pack(_:count:into:)`` packs them).
  @inline(__always)
  static func float4(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, multiplier: Float,
    into codes: UnsafeMutablePointer<Int32>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Float4E2M1Conversion.code(IntegerRounding.clamp(value * multiplier, -6, 6))
    }
  }

  /// The e2m1 code of `x ⊘ divisor` for each of `count` values of `format` at `values` (the
  /// encoder saturates at ±6), into `codes` (``pack(_:count:into:)`` packs them).
  @inline(__always)
  static func float4(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, divisor: Float, into codes: UnsafeMutablePointer<Int32>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Float4E2M1Conversion.code(value / divisor)
    }
  }

  /// Packs `count` (even) 4-bit `codes` two per byte, even element in the low nibble. Callers
  /// pack a whole row of codes at once: packing each block right after its codes were stored
  /// reads them back while their vector store is still in flight, and stalled (NVFP4 and MXFP4
  /// ran 40 % faster in a kernel benchmark this way).
  @inline(__always)
  static func pack(_ codes: UnsafePointer<Int32>, count: Int, into bytes: UnsafeMutablePointer<UInt8>) {
    for pair in 0..<count / 2 {
      bytes[pair] = UInt8(truncatingIfNeeded: codes[2 &* pair] | (codes[2 &* pair &+ 1] << 4))
    }
  }
}
