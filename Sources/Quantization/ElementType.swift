/// The element type of a quantized part, spelled as safetensors spells its dtype.
///
/// The raw values are the safetensors dtype strings, so a caller maps them 1:1 to its own dtype
/// enum (`DType(rawValue:)` in SafeTensors).
public enum ElementType: String, Sendable, CaseIterable, Hashable {
  /// `int8` (`I8`).
  case i8 = "I8"
  /// `uint8` (`U8`), also two packed fp4 e2m1 codes per byte.
  case u8 = "U8"
  /// `float32` (`F32`).
  case f32 = "F32"
  /// `bfloat16` (`BF16`).
  case bf16 = "BF16"
  /// `float16` (`F16`).
  case f16 = "F16"
  /// `float8_e4m3fn` (`F8_E4M3`).
  case f8e4m3 = "F8_E4M3"
  /// `float8_e8m0fnu` (`F8_E8M0`).
  case f8e8m0 = "F8_E8M0"

  /// The size of one element in bytes.
  public var byteWidth: Int {
    switch self {
    case .i8, .u8, .f8e4m3, .f8e8m0: 1
    case .bf16, .f16: 2
    case .f32: 4
    }
  }
}
