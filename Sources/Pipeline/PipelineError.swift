/// An error from planning or running a conversion.
///
/// The ``Code`` names the rule or the failure; the message names the path and tensor involved
/// and, where there is one, what to do about it.
public struct PipelineError: Error, Sendable, CustomStringConvertible {
  /// What went wrong.
  public enum Code: String, Sendable {
    /// The input cannot be converted (invalid checkpoint, unsupported dtype, a tensor torchao
    /// refuses).
    case invalidInput = "invalid-input"
    /// An option or recipe value is out of range.
    case invalidOption = "invalid-option"
    /// The output directory holds something that is not ours, or a different conversion.
    case outputExists = "output-exists"
    /// The memory budget cannot hold what one step needs.
    case budget = "budget"
    /// A system call failed.
    case io = "io"
    /// The run was stopped by a signal or cancelled.
    case cancelled = "cancelled"
  }

  public var code: Code
  public var message: String

  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  public var description: String { message }
}
