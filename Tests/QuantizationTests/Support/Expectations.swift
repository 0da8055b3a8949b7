import Quantization
import Testing

/// Quantizes `values` (rounded to `format`) of `shape` at once.
func quantize(_ scheme: any QuantizationScheme, _ values: [Float], shape: [Int]) throws -> [PartName: [UInt8]] {
  try Buffers.bytes(values, as: scheme.source).withUnsafeBytes { try scheme.quantize($0, shape: shape) }
}

/// The code of the ``QuantizationError`` `body` throws, or `nil` when it throws none (or another
/// error).
func errorCode(_ body: () throws -> Void) -> QuantizationError.Code? {
  do {
    try body()
    return nil
  } catch {
    return (error as? QuantizationError)?.code
  }
}
