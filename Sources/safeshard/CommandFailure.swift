import ArgumentParser
import Pipeline
import Quantization
import SafeTensors
import TorchAO

/// Why a command failed, in the terms a batch scheduler acts on: the class and exit status, the
/// rule or failure (`code`), the system error number where a system call failed, and the file
/// and tensor involved.
///
/// ``Safeshard/main()`` prints it as `Error: MESSAGE` on standard error and exits with
/// ``exitStatus``; `convert --progress json` also reports it as an `error` event.
struct CommandFailure: Error, CustomStringConvertible {
  var exitClass: PipelineError.ExitClass
  /// The rule or failure: a ``PipelineError/Code`` or the code of the input's, torchao's or the
  /// recipe's error (`io`, `locked`, `header-json`, `not-found`, ...).
  var code: String
  var message: String
  /// The `errno` of the failed system call, where there is one.
  var errno: Int32?
  var path: String?
  var tensor: String?
  /// The process exit status: the class's, or `128 + signal` for a run a signal stopped.
  var exitStatus: Int32

  var description: String { message }

  init(
    _ exitClass: PipelineError.ExitClass, code: String, _ message: String, errno: Int32? = nil, path: String? = nil,
    tensor: String? = nil, exitStatus: Int32? = nil
  ) {
    self.exitClass = exitClass
    self.code = code
    self.message = message
    self.errno = errno
    self.path = path
    self.tensor = tensor
    self.exitStatus = exitStatus ?? exitClass.exitStatus
  }

  /// The failure of a run that `signal` stopped (exit status `128 + signal`).
  static func stopped(by signal: SignalStop.Received, output: String) -> CommandFailure {
    CommandFailure(
      .cancelled, code: PipelineError.Code.cancelled.rawValue,
      "stopped by \(signal.name); \(output) is incomplete. Run the same command again to continue.", path: output,
      exitStatus: 128 + signal.number)
  }

  /// The failure `error` stands for, or `nil` for ArgumentParser's own exits (`ExitCode`, help).
  ///
  /// - ``PipelineError``: its ``PipelineError/exitClass``.
  /// - `SafeTensorsError`, `TorchAOError`, `QuantizationError`: the input cannot be converted
  ///   (`invalid-input`, 65); a `SafeTensorsError` of code `io` (a failed open, stat or read) is
  ///   `io` (74).
  /// - `RecipeError`: a wrong `--recipe` (`usage`, 64), but `refused`, a tensor of the input
  ///   that the recipe's scheme cannot quantize, is `invalid-input`.
  /// - `ValidationError`: a wrong flag (`usage`, 64).
  init?(_ error: any Error) {
    switch error {
    case let failure as CommandFailure:
      self = failure
    case let error as PipelineError:
      self.init(
        error.exitClass, code: error.code.rawValue, error.message, errno: error.errno, path: error.path,
        tensor: error.tensor)
    case let error as SafeTensorsError:
      // A failed open, stat or read of the input is the machine's trouble, not the file's.
      self.init(
        error.code == .io ? .io : .invalidInput, code: error.code.rawValue, "\(error)", path: error.file,
        tensor: error.tensor)
    case let error as TorchAOError:
      self.init(.invalidInput, code: error.code.rawValue, "\(error)", path: error.file, tensor: error.tensor)
    case let error as QuantizationError:
      self.init(.invalidInput, code: error.code.rawValue, "\(error)")
    case let error as RecipeError:
      self.init(
        error.code == .refused ? .invalidInput : .usage, code: error.code.rawValue, "\(error)", path: error.file,
        tensor: error.tensor)
    case let error as ValidationError:
      self.init(.usage, code: PipelineError.Code.invalidOption.rawValue, error.message)
    default:
      return nil
    }
  }
}
