/// The element type of a high-precision input tensor (torchao's weight `dtype`), stored
/// little-endian.
public enum FloatFormat: String, Sendable, CaseIterable, Hashable {
  /// bfloat16 (`torch.bfloat16`, safetensors `BF16`).
  case bf16 = "BF16"
  /// IEEE binary16 (`torch.float16`, safetensors `F16`).
  case fp16 = "F16"
  /// IEEE binary32 (`torch.float32`, safetensors `F32`).
  case fp32 = "F32"

  /// The size of one element in bytes.
  public var byteWidth: Int {
    switch self {
    case .bf16, .fp16: 2
    case .fp32: 4
    }
  }

  /// The element type of a part stored in this format.
  public var elementType: ElementType {
    switch self {
    case .bf16: .bf16
    case .fp16: .f16
    case .fp32: .f32
    }
  }

  /// `R_dt` of the spec: `value` rounded to this format with ties to even and widened back
  /// (exact). fp16 rounds into its subnormals and overflows to ±inf; fp32 is the identity.
  @inlinable
  public func round(_ value: Float) -> Float {
    switch self {
    case .bf16: BFloat16Conversion.round(value)
    case .fp16: Float16Conversion.round(value)
    case .fp32: value
    }
  }

  /// The smallest positive normal value (`torch.finfo(dtype).tiny`): 2⁻¹²⁶ for bf16 and fp32,
  /// 2⁻¹⁴ for fp16.
  public var smallestNormal: Float {
    switch self {
    case .bf16, .fp32: 0x1p-126
    case .fp16: 0x1p-14
    }
  }

  /// The value of element `index` of `bytes` (exact).
  @inlinable
  public func value(at index: Int, in bytes: UnsafeRawPointer) -> Float {
    switch self {
    case .bf16:
      BFloat16Conversion.float(
        from: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
    case .fp16:
      Float16Conversion.float(
        from: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
    case .fp32:
      Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
    }
  }

  /// Stores `value`, rounded to this format, as element `index` of `bytes`.
  @inlinable
  public func store(_ value: Float, at index: Int, in bytes: UnsafeMutableRawBufferPointer) {
    switch self {
    case .bf16:
      bytes.storeBytes(of: BFloat16Conversion.bits(from: value).littleEndian, toByteOffset: 2 * index, as: UInt16.self)
    case .fp16:
      bytes.storeBytes(of: Float16Conversion.bits(from: value).littleEndian, toByteOffset: 2 * index, as: UInt16.self)
    case .fp32:
      bytes.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
    }
  }
}

extension FloatFormat {
  /// Stores a dequantized `value`, rounded to this format, as element `index` of `bytes`; a NaN
  /// as the format's positive quiet NaN (`0x7FC0`, `0x7E00`, `0x7FC0_0000`) whatever its sign and
  /// payload. torch's CPU kernels write NaNs whose bits depend on the path that computed them
  /// (bf16 `0xFFFF` from the AVX2 narrowing, `0x7FC0` from the scalar one for the last elements
  /// of a tensor; fp16 and fp32 the float8 code's sign and payload), so only NaN itself is torch's.
  @inline(__always)
  func storeDequantized(_ value: Float, at index: Int, in bytes: UnsafeMutableRawBufferPointer) {
    store(value.isNaN ? .nan : value, at: index, in: bytes)
  }
}

extension FloatFormat {
  /// Stores `value(codes[i])`, rounded to this format (NaN as in
  /// ``storeDequantized(_:at:in:)``), as element `i` of `bytes` for every `i` in `range`, front to
  /// back, each code read before its element is written (the codes may be the end of `bytes`). A
  /// range of 512 elements or more goes through a table of the 256 codes' results, one
  /// conversion a code instead of one an element.
  @inline(__always)
  func storeDequantized(
    codes: UnsafeRawBufferPointer, range: Range<Int>, in bytes: UnsafeMutableRawBufferPointer,
    _ value: (UInt8) -> Float
  ) {
    guard range.count >= 512, self != .fp32 else {
      for index in range { storeDequantized(value(codes[index]), at: index, in: bytes) }
      return
    }
    withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 256) { table in
      for code in 0..<256 {
        let result = value(UInt8(code))
        table[code] =
          (self == .bf16
          ? BFloat16Conversion.bits(from: result) : Float16Conversion.bits(from: result.isNaN ? .nan : result))
          .littleEndian
      }
      for index in range {
        bytes.storeBytes(of: table[Int(codes[index])], toByteOffset: 2 &* index, as: UInt16.self)
      }
    }
  }
}
