import Foundation

/// Faults a test can inject into a real run through the `SAFESHARD_FAULT` environment variable,
/// to check that crashes and full disks are survived. Without the variable nothing happens.
///
/// - `enospc-after:N`: once a shard has N data bytes, its next write fails with `ENOSPC`, as a
///   full disk would make it.
/// - `kill-at:POINT`: the process kills itself with SIGKILL when it reaches `POINT`
///   (`finalize-files`, `finalize-sums`, `finalize-weights`: the steps of finalisation).
enum FaultInjection {
  private static let spec: (kind: String, value: String)? = {
    guard let text = ProcessInfo.processInfo.environment["SAFESHARD_FAULT"],
      let colon = text.firstIndex(of: ":")
    else { return nil }
    return (String(text[..<colon]), String(text[text.index(after: colon)...]))
  }()

  /// Fails like a full disk once `total` passes the injected limit.
  static func checkWrite(path: String, total: Int) throws(PipelineError) {
    guard let spec, spec.kind == "enospc-after", let limit = Int(spec.value), total > limit else { return }
    throw PipelineError(.io, "writing \(path): \(String(cString: strerror(ENOSPC))) (errno \(ENOSPC))")
  }

  /// Kills the process when `point` is the injected one.
  static func reach(_ point: String) {
    guard let spec, spec.kind == "kill-at", spec.value == point else { return }
    kill(getpid(), SIGKILL)
  }
}
