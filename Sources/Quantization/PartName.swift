/// The name of one data part of a torchao tensor subclass, as torchao names it in
/// `_tensor_data_names` and in flattened keys (`<module>._<param>_<part>`).
public enum PartName: String, Sendable, CaseIterable, Hashable, Comparable {
  /// The quantized elements.
  case qdata
  /// The block scales.
  case scale
  /// The zero points.
  case zeroPoint = "zero_point"
  /// NVFP4's per-tensor (or per-expert) fp32 scale.
  case perTensorScale = "per_tensor_scale"

  /// Orders by raw value, so sorted parts come out in a stable order.
  public static func < (lhs: PartName, rhs: PartName) -> Bool { lhs.rawValue < rhs.rawValue }
}
