import SystemPackage

/// An error from spilling staging data to disk or reading it back.
///
/// The message says what is wrong; ``file`` and ``offset`` say where when it is known, so that a message alone is
/// enough to find the problem.
public struct SpillError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The rule that was broken.
  public enum Code: String, Sendable, CaseIterable {
    /// A spilled block fails validation: bad magic or version, a length that does not fit, an LZ4 stream that does
    /// not decode to the expected size, or a checksum that does not match. The spill file was damaged after it was
    /// written.
    case corruptBlock = "corrupt-block"
    /// A system call on the spill file failed.
    case io = "io"
  }

  /// The rule that was broken.
  public var code: Code
  /// What is wrong, in words.
  public var message: String
  /// The spill file the problem is in, if known.
  public var file: String?
  /// The byte offset in ``file`` of the block the problem is in, if known.
  public var offset: Int?
  /// The system call that failed and its `errno`, for ``Code/io``.
  public var systemCall: PipelineError.SystemCallError?

  /// Creates an error.
  public init(
    _ code: Code, _ message: String, file: String? = nil, offset: Int? = nil,
    systemCall: PipelineError.SystemCallError? = nil
  ) {
    self.code = code
    self.message = message
    self.file = file
    self.offset = offset
    self.systemCall = systemCall
  }

  /// A failed system call on `file`: the message names the call and the system error.
  static func systemCall(_ call: String, _ errno: Errno, what: String, file: String, offset: Int? = nil) -> SpillError {
    SpillError(
      .io, "\(what): \(call) failed: \(errno.description) (errno \(errno.rawValue))", file: file, offset: offset,
      systemCall: PipelineError.SystemCallError(call, errno))
  }

  /// `FILE at offset N: MESSAGE [rule CODE]`, leaving out what is not known.
  public var description: String {
    var text = ""
    if let file { text += offset.map { "\(file) at offset \($0): " } ?? "\(file): " }
    return text + message + " [rule \(code.rawValue)]"
  }

  /// The same error, placed in `file` at `offset` when it was raised without a place.
  func located(file: String, offset: Int) -> SpillError {
    var copy = self
    if copy.file == nil { copy.file = file }
    if copy.offset == nil { copy.offset = offset }
    return copy
  }
}
