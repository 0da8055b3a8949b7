/// An error from planning or running a quantization: input that torchao refuses, or buffers that
/// do not match the planned layout.
///
/// The Quantization module works on buffers, so messages name the shape, rows and part involved;
/// the caller adds the file and tensor names.
public struct QuantizationError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The rule that was broken.
  public enum Code: String, Sendable, CaseIterable {
    /// torchao cannot quantize a tensor of this shape with this scheme (rank, divisibility,
    /// swizzle tiles).
    case unsupportedShape = "unsupported-shape"
    /// torchao does not quantize this input format with this scheme (MX from fp16, say).
    case unsupportedFormat = "unsupported-format"
    /// The scheme's own parameters are out of range (a group size of 0, int9).
    case invalidScheme = "invalid-scheme"
    /// A chunk's rows, input size, output buffers or statistic do not match the layout.
    case invalidArgument = "invalid-argument"
  }

  /// The rule that was broken.
  public var code: Code
  /// What is wrong, in words.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// `code: message`.
  public var description: String { "\(code.rawValue): \(message)" }
}
