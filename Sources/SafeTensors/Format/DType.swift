/// A safetensors element type, as the reference implementation names and orders it.
///
/// The cases are declared in the reference's enum order; ``Comparable`` follows it, so the
/// reference writer's layout (dtype descending, then name) is `sorted { $0 > $1 }` on dtype.
public enum DType: String, Sendable, CaseIterable, Comparable, Hashable {
  case bool = "BOOL"
  case f4 = "F4"
  case f6e2m3 = "F6_E2M3"
  case f6e3m2 = "F6_E3M2"
  case u8 = "U8"
  case i8 = "I8"
  case f8e5m2 = "F8_E5M2"
  case f8e4m3 = "F8_E4M3"
  case f8e8m0 = "F8_E8M0"
  case f8e4m3fnuz = "F8_E4M3FNUZ"
  case f8e5m2fnuz = "F8_E5M2FNUZ"
  case i16 = "I16"
  case u16 = "U16"
  case f16 = "F16"
  case bf16 = "BF16"
  case i32 = "I32"
  case u32 = "U32"
  case f32 = "F32"
  case c64 = "C64"
  case f64 = "F64"
  case i64 = "I64"
  case u64 = "U64"

  /// The size of one element in bits (4 and 6 for the sub-byte float types).
  public var bitSize: Int {
    switch self {
    case .f4: 4
    case .f6e2m3, .f6e3m2: 6
    case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: 8
    case .i16, .u16, .f16, .bf16: 16
    case .i32, .u32, .f32: 32
    case .c64, .f64, .i64, .u64: 64
    }
  }

  /// The position in the reference enum.
  var order: Int { Self.allCases.firstIndex(of: self)! }

  public static func < (lhs: DType, rhs: DType) -> Bool { lhs.order < rhs.order }

  /// The number of bytes that `elements` elements take, or `nil` when it overflows or is not a
  /// whole number of bytes (an odd count of 4-bit elements, say).
  public func byteCount(elements: UInt64) -> UInt64? {
    let (bits, overflow) = elements.multipliedReportingOverflow(by: UInt64(bitSize))
    guard !overflow, bits % 8 == 0 else { return nil }
    return bits / 8
  }
}

/// The number of elements of a shape (1 for a scalar), or `nil` on overflow.
public func elementCount(_ shape: [UInt64]) -> UInt64? {
  var count: UInt64 = 1
  for dimension in shape {
    let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
    if overflow { return nil }
    count = product
  }
  return count
}
