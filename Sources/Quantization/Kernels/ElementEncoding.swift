/// The element loops of the MX and NVFP4 schemes: read a block of input in its own format, scale
/// it, clamp, and encode to e4m3fn bytes or packed e2m1 nibbles, with no row of `Float`s in
/// between (``RowKernels/forEachValue(_:count:format:_:)``).
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

  /// `e2m1(clamp(x ⊗ multiplier, −6, 6))` for each of `count` (even) values of `format` at
  /// `values`, packed two per byte with the even element in the low nibble; `codes` is scratch
  /// for `count` codes.
  @inline(__always)
  static func float4(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, multiplier: Float,
    codes: UnsafeMutablePointer<Int32>, into bytes: UnsafeMutablePointer<UInt8>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Float4E2M1Conversion.code(IntegerRounding.clamp(value * multiplier, -6, 6))
    }
    pack(codes, count: count, into: bytes)
  }

  /// `e2m1(x ⊘ divisor)` for each of `count` (even) values of `format` at `values` (the encoder
  /// saturates at ±6), packed two per byte with the even element in the low nibble; `codes` is
  /// scratch for `count` codes.
  @inline(__always)
  static func float4(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, divisor: Float, codes: UnsafeMutablePointer<Int32>,
    into bytes: UnsafeMutablePointer<UInt8>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Float4E2M1Conversion.code(value / divisor)
    }
    pack(codes, count: count, into: bytes)
  }

  /// Packs 4-bit `codes` two per byte, even element in the low nibble.
  @inline(__always)
  private static func pack(_ codes: UnsafePointer<Int32>, count: Int, into bytes: UnsafeMutablePointer<UInt8>) {
    for pair in 0..<count / 2 {
      bytes[pair] = UInt8(truncatingIfNeeded: codes[2 &* pair] | (codes[2 &* pair &+ 1] << 4))
    }
  }
}
