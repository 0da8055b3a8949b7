import Foundation

/// An exclusive `flock(2)` on a file in the state folder: one conversion at a time per output.
/// The kernel releases it when the process ends, however it ends.
public final class RunLock: Sendable {
  private let descriptor: Int32

  /// Takes the lock on `path`.
  ///
  /// - Throws: ``PipelineError`` (`locked`) when another process holds it.
  init(path: String) throws(PipelineError) {
    let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw PipelineError(.io, "opening \(path): \(String(cString: strerror(errno)))") }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      close(descriptor)
      throw PipelineError(
        .locked,
        "another safeshard process is converting into this output (it holds \(path)); wait for it or stop it")
    }
    self.descriptor = descriptor
  }

  deinit {
    close(descriptor)
  }
}
