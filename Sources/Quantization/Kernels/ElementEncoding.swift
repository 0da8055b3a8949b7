/// The element loops of the MX and NVFP4 schemes: scale a block, clamp, and encode to e4m3fn bytes
/// or packed e2m1 nibbles.
enum ElementEncoding {
  /// `e4m3fn(clamp(x ⊗ multiplier, −448, 448))` for each of `count` values.
  static func float8(
    _ values: UnsafePointer<Float>, count: Int, multiplier: Float, into buffer: UnsafeMutableBufferPointer<UInt8>
  ) {
    guard let codes = buffer.baseAddress else { return }
    for index in 0..<count {
      codes[index] = Float8E4M3Conversion.bits(from: IntegerRounding.clamp(values[index] * multiplier, -448, 448))
    }
  }

  /// `e4m3fn(clamp(x ⊘ divisor, −448, 448))` for each of `count` values.
  static func float8(
    _ values: UnsafePointer<Float>, count: Int, divisor: Float, into buffer: UnsafeMutableBufferPointer<UInt8>
  ) {
    guard let codes = buffer.baseAddress else { return }
    for index in 0..<count {
      codes[index] = Float8E4M3Conversion.bits(from: IntegerRounding.clamp(values[index] / divisor, -448, 448))
    }
  }

  /// `e2m1(clamp(x ⊗ multiplier, −6, 6))` for each of `count` (even, at most 32) values, packed two
  /// per byte with the even element in the low nibble.
  static func float4(
    _ values: UnsafePointer<Float>, count: Int, multiplier: Float, into bytes: UnsafeMutableBufferPointer<UInt8>
  ) {
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { codes in
      for index in 0..<count {
        codes[index] = Float4E2M1Conversion.code(IntegerRounding.clamp(values[index] * multiplier, -6, 6))
      }
      pack(codes.baseAddress!, count: count, into: bytes)
    }
  }

  /// `e2m1(x ⊘ divisor)` for each of `count` (even, at most 32) values (the encoder saturates at
  /// ±6), packed two per byte with the even element in the low nibble.
  static func float4(
    _ values: UnsafePointer<Float>, count: Int, divisor: Float, into bytes: UnsafeMutableBufferPointer<UInt8>
  ) {
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { codes in
      for index in 0..<count {
        codes[index] = Float4E2M1Conversion.code(values[index] / divisor)
      }
      pack(codes.baseAddress!, count: count, into: bytes)
    }
  }

  /// Packs 4-bit `codes` two per byte, even element in the low nibble.
  @inline(__always)
  private static func pack(_ codes: UnsafePointer<Int32>, count: Int, into buffer: UnsafeMutableBufferPointer<UInt8>) {
    guard let bytes = buffer.baseAddress else { return }
    for pair in 0..<count / 2 {
      bytes[pair] = UInt8(truncatingIfNeeded: codes[2 &* pair] | (codes[2 &* pair &+ 1] << 4))
    }
  }
}
