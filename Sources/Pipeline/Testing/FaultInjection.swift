import Foundation
import Synchronization

/// Faults a test injects into a real run through the `SAFESHARD_FAULT` environment variable, to
/// check that crashes, signals and full disks are survived at known moments.
///
/// The hooks exist only in debug builds (the `SAFESHARD_FAULTS` condition, which `Package.swift`
/// sets for them; `swift test` uses one). In a release build every hook is empty and the variable
/// is ignored.
///
/// The run reports these events:
/// - `locked`: the output's locks are held and the run's identity is recorded; nothing else is
///   written yet.
/// - `commit:FILE:N`: the `N`-th `commit` line of shard `FILE` (counted from 1) is in the journal.
/// - `done:FILE`: shard `FILE` is renamed into place and its `done` line is in the journal.
/// - `mapped:TENSOR:OFFSET`: the bytes of input tensor `TENSOR` from byte `OFFSET` (a chunk's
///   input) are mapped and loaded, and not yet used.
/// - `spill:N`: the `N`-th piece of the process (counted from 1) is in a spill file.
/// - `finalize-files`, `finalize-sums`, `finalize-weights`: finalisation is about to copy the
///   input's other files, write `SHA256SUMS`, and put the index or single shard in place.
///
/// The variable holds one fault:
/// - `kill-at:EVENT` (or `kill-after:EVENT`): the process kills itself with SIGKILL when `EVENT`
///   happens.
/// - `pause-at:EVENT@PATH`: when `EVENT` happens, the thread that reached it waits for `PATH`. A
///   FIFO is opened and read to its end: a test opens it for writing (which returns once the run
///   waits there), does what it wants at that moment, and closes it to let the run go on. Any
///   other path is waited for until it exists.
/// - `enospc-after:N`: once a shard has `N` data bytes, its next write fails with `ENOSPC`, as a
///   full disk would make it.
enum FaultInjection {
  #if SAFESHARD_FAULTS
    private enum Fault {
      case kill(at: String)
      case pause(at: String, until: String)
      case enospc(after: Int)
    }

    private static let fault: Fault? = {
      guard let text = ProcessInfo.processInfo.environment["SAFESHARD_FAULT"],
        let colon = text.firstIndex(of: ":")
      else { return nil }
      let value = String(text[text.index(after: colon)...])
      switch text[..<colon] {
      case "kill-at", "kill-after": return .kill(at: value)
      case "pause-at":
        guard let separator = value.lastIndex(of: "@") else { return nil }
        return .pause(at: String(value[..<separator]), until: String(value[value.index(after: separator)...]))
      case "enospc-after": return Int(value).map { .enospc(after: $0) }
      default: return nil
      }
    }()

    private static let spills = Atomic(0)

    /// Fails like a full disk once `total` passes the injected limit.
    static func checkWrite(path: String, total: Int) throws(PipelineError) {
      guard case .enospc(let limit) = fault, total > limit else { return }
      throw PipelineError.systemCall("write", .noSpace, path: path)
    }

    /// Kills the process, or pauses the calling thread, when `event` is the injected one.
    static func reach(_ event: @autoclosure () -> String) {
      switch fault {
      case .kill(let point) where point == event():
        kill(getpid(), SIGKILL)
      case .pause(let point, let path) where point == event():
        wait(for: path)
      default:
        return
      }
    }

    /// Reports the `spill:N` event of one more spilled piece.
    static func spilled() {
      guard fault != nil else { return }
      let count = spills.add(1, ordering: .relaxed).newValue
      reach("spill:\(count)")
    }

    private static func wait(for path: String) {
      var status = stat()
      while stat(path, &status) != 0 { usleep(10_000) }
      guard status.st_mode & S_IFMT == S_IFIFO else { return }
      let descriptor = open(path, O_RDONLY | O_CLOEXEC)
      guard descriptor >= 0 else { return }
      defer { close(descriptor) }
      var byte: UInt8 = 0
      while read(descriptor, &byte, 1) > 0 {}
    }
  #else
    @inline(__always) static func checkWrite(path: String, total: Int) throws(PipelineError) {}
    @inline(__always) static func reach(_ event: @autoclosure () -> String) {}
    @inline(__always) static func spilled() {}
  #endif
}
