import SystemPackage

/// An error from planning or running a conversion.
///
/// The ``Code`` names the rule or the failure and decides the class a scheduler acts on
/// (``ExitClass``); the message names the path and tensor involved and, where there is one, what
/// to do about it. The error that caused it (a system call's `errno`, a spill or format error) is
/// kept in ``cause``, not flattened into the message.
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
    /// Another process holds the output's lock; trying again later may work.
    case locked = "locked"
    /// Another worker has not finished its share yet (`safeshard finalize`); run it, then again.
    case incomplete = "incomplete"
    /// The run was stopped by a signal or cancelled.
    case cancelled = "cancelled"
  }

  /// What a batch scheduler should do about an error (the exit statuses follow `sysexits.h`).
  public enum ExitClass: String, Sendable {
    /// A wrong option, recipe or OUTPUT: fix the command (`64`, `EX_USAGE`).
    case usage
    /// The input cannot be converted: never worth a retry (`65`, `EX_DATAERR`).
    case invalidInput = "invalid-input"
    /// A system call failed (a full disk, a read error): retry after fixing the machine (`74`,
    /// `EX_IOERR`).
    case io
    /// Another process holds the output: retry later (`75`, `EX_TEMPFAIL`).
    case temporary
    /// Stopped by a signal (`128 + signal`).
    case cancelled

    /// The process exit status of this class (for `cancelled`, after SIGINT; SIGTERM gives 143).
    public var exitStatus: Int32 {
      switch self {
      case .usage: 64
      case .invalidInput: 65
      case .io: 74
      case .temporary: 75
      case .cancelled: 130
      }
    }
  }

  /// A failed system call: which one, and its `errno`.
  public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call, as its manual page names it (`pwrite`, `fsync`, `rename`).
    public var call: String
    public var errno: Errno

    public init(_ call: String, _ errno: Errno) {
      self.call = call
      self.errno = errno
    }

    public var description: String { "\(call): \(errno.description) (errno \(errno.rawValue))" }
  }

  public var code: Code
  public var message: String
  /// The file the error is about, where there is one.
  public var path: String?
  /// The tensor the error is about, where there is one.
  public var tensor: String?
  /// The error underneath: a ``SystemCallError``, `SpillError`, `SafeTensorsError`, ...
  public var cause: (any Error & Sendable)?

  /// An error with `code` and `message`; `path`, `tensor` and `cause` say what it is about and
  /// what caused it (the message should already name them for a reader).
  public init(
    _ code: Code, _ message: String, path: String? = nil, tensor: String? = nil, cause: (any Error & Sendable)? = nil
  ) {
    self.code = code
    self.message = message
    self.path = path
    self.tensor = tensor
    self.cause = cause
  }

  /// A failed system call on `path`: the message names the call, the path and the system error.
  public static func systemCall(_ call: String, _ errno: Errno, path: String, tensor: String? = nil) -> PipelineError {
    PipelineError(
      .io, "\(call) \(path): \(errno.description) (errno \(errno.rawValue))", path: path, tensor: tensor,
      cause: SystemCallError(call, errno))
  }

  /// The class of this error, for exit statuses and `--progress json`.
  public var exitClass: ExitClass {
    switch code {
    case .invalidInput: .invalidInput
    case .invalidOption, .outputExists, .budget: .usage
    case .io: .io
    case .locked, .incomplete: .temporary
    case .cancelled: .cancelled
    }
  }

  /// The system error number underneath, where a system call failed (searched down the causes).
  public var errno: Int32? {
    var next: (any Error)? = cause
    while let error = next {
      if let call = error as? SystemCallError { return call.errno.rawValue }
      if let errno = error as? Errno { return errno.rawValue }
      if let spill = error as? SpillError { return spill.systemCall?.errno.rawValue }
      next = (error as? PipelineError)?.cause
    }
    return nil
  }

  public var description: String { message }
}
