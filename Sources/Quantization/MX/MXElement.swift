/// The element type of an MX tensor (torchao's `elem_dtype`).
public enum MXElement: String, Sendable, CaseIterable, Hashable {
  /// MXFP8: `float8_e4m3fn`, one byte per element, largest value 448.
  case float8E4M3 = "float8_e4m3fn"
  /// MXFP4: `float4_e2m1fn_x2`, two elements per byte (even element low), largest value 6.
  case float4E2M1 = "float4_e2m1fn_x2"

  /// The largest element magnitude `P`.
  var greatestFiniteMagnitude: Float {
    switch self {
    case .float8E4M3: 448
    case .float4E2M1: 6
    }
  }

  /// The FLOOR rule's exponent offset: the exponent of the largest power of two ≤ `P`.
  var floorExponentOffset: Int {
    switch self {
    case .float8E4M3: 8
    case .float4E2M1: 2
    }
  }
}
