import Foundation
import SystemPackage

/// An exclusive `flock(2)` on a file in the state folder: one conversion at a time per output.
/// The kernel releases it when the process ends, however it ends.
public final class RunLock: Sendable {
  private let descriptor: Int32

  /// Takes worker `worker`'s lock on `path` (never through a symbolic link).
  ///
  /// - Throws: ``PipelineError`` (`locked`) when another process holds it; (`io`, with the
  ///   failed system call as its cause) when the file cannot be opened or locked.
  init(path: String, worker: Int) throws(PipelineError) {
    let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
    guard descriptor >= 0 else { throw PipelineError.systemCall("open", Errno(rawValue: errno), path: path) }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let failure = Errno(rawValue: errno)
      close(descriptor)
      guard failure == .wouldBlock else { throw PipelineError.systemCall("flock", failure, path: path) }
      throw PipelineError(
        .locked,
        "another safeshard process is converting into this output as worker \(worker) (it holds \(path)); "
          + "wait for it or stop it",
        path: path, cause: PipelineError.SystemCallError("flock", failure))
    }
    self.descriptor = descriptor
  }

  deinit {
    close(descriptor)
  }
}
