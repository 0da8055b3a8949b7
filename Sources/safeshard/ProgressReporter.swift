import ArgumentParser
import Foundation
import Pipeline
import SafeTensors
import Synchronization

/// How progress is shown.
enum ProgressStyle: String, ExpressibleByArgument, CaseIterable, Sendable {
  case bar, json, none

  /// A bar when standard error is a terminal, nothing otherwise.
  static var automatic: ProgressStyle { isatty(STDERR_FILENO) == 1 ? .bar : .none }
}

/// Prints progress events: a bar on standard error (bytes done, GB/s, ETA), or one JSON object
/// a line on standard output. Warnings go to standard error as lines of their own whatever the
/// style (a `warning` event under `json`).
final class ProgressReporter: Sendable {
  let style: ProgressStyle
  private let state = Mutex<(total: Int, done: Int, start: Date, lastDraw: Date)>((0, 0, Date(), .distantPast))

  init(style: ProgressStyle) {
    self.style = style
  }

  var report: @Sendable (ProgressEvent) -> Void {
    { [self] event in self.handle(event) }
  }

  private func handle(_ event: ProgressEvent) {
    if case .fileWarning(let path, let message) = event, style != .json {
      // A warning is shown whatever the progress style, on a line of its own.
      FileHandle.standardError.write(Data("\(style == .bar ? "\n" : "")warning: \(path): \(message)\n".utf8))
      return
    }
    if case .warning(let tensor, let message) = event, style != .json {
      let line = "\(style == .bar ? "\n" : "")warning: tensor '\(tensor.escapingControlCharacters)': \(message)\n"
      FileHandle.standardError.write(Data(line.utf8))
      return
    }
    switch style {
    case .none: return
    case .json: emitJSON(event)
    case .bar: drawBar(event)
    }
  }

  private func emitJSON(_ event: ProgressEvent) {
    var members: [JSONMember] = []
    switch event {
    case .started(let total, let shards):
      members += [
        JSONMember("event", .string("started")), JSONMember("total_bytes", .number(String(total))),
        JSONMember("shards", .number(String(shards))),
      ]
    case .tensorStarted(let name, let index, let count):
      members += [
        JSONMember("event", .string("tensor")), JSONMember("name", .string(name)),
        JSONMember("index", .number(String(index))), JSONMember("count", .number(String(count))),
      ]
    case .wrote(_, let done):
      // Written bytes arrive often; a line per shard-level event is enough for logs.
      _ = done
      return
    case .shardFinished(let fileName, let size, let sha256):
      members += [
        JSONMember("event", .string("shard")), JSONMember("file", .string(fileName)),
        JSONMember("bytes", .number(String(size))), JSONMember("sha256", .string(sha256)),
      ]
    case .fileWarning(let path, let message):
      members += [
        JSONMember("event", .string("warning")), JSONMember("path", .string(path)),
        JSONMember("message", .string(message)),
      ]
    case .warning(let tensor, let message):
      members += [
        JSONMember("event", .string("warning")), JSONMember("tensor", .string(tensor)),
        JSONMember("message", .string(message)),
      ]
    case .finished(let bytes, let peak, let spilled):
      members += [
        JSONMember("event", .string("finished")), JSONMember("bytes", .number(String(bytes))),
        JSONMember("peak_memory", .number(String(peak))), JSONMember("spilled_bytes", .number(String(spilled))),
      ]
    }
    writeJSON(members)
  }

  /// Writes one JSON object as a line of standard output, `time` first, and flushes it: a
  /// reader at the other end of a pipe gets each event when it happens.
  private func writeJSON(_ members: [JSONMember]) {
    state.withLock { state in
      let time = JSONMember("time", .number(String(format: "%.3f", Date().timeIntervalSince(state.start))))
      print(JSONWriter.string(.object([time] + members)))
      fflush(nil)
    }
  }

  /// Reports a failed run: with `json`, an `error` event with the failure's class, code,
  /// `errno`, message, path and tensor (`null` where there is none). The message itself goes to
  /// standard error in every style.
  func failed(_ failure: CommandFailure) {
    guard style == .json else { return }
    func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    writeJSON([
      JSONMember("event", .string("error")), JSONMember("class", .string(failure.exitClass.rawValue)),
      JSONMember("code", .string(failure.code)),
      JSONMember("errno", failure.errno.map { .number(String($0)) } ?? .null),
      JSONMember("message", .string(failure.message)), JSONMember("path", text(failure.path)),
      JSONMember("tensor", text(failure.tensor)),
    ])
  }

  /// Reports that this process, worker `index` of `count`, wrote its `shards` and that OUTPUT
  /// waits for `finalize`: the last line, as text or (`json`) a `worker-finished` event.
  func workerFinished(index: Int, count: Int, shards: Int, output: String) {
    let message =
      "\(output): worker \(index) of \(count) wrote \(shards) shard\(shards == 1 ? "" : "s"); "
      + "run `safeshard finalize \(output)` when every worker is done"
    guard style == .json else { return print(message) }
    writeJSON([
      JSONMember("event", .string("worker-finished")), JSONMember("worker", .number(String(index))),
      JSONMember("workers", .number(String(count))), JSONMember("shards", .number(String(shards))),
      JSONMember("message", .string(message)),
    ])
  }

  /// Reports that OUTPUT is already a finished conversion of this input: a line of text, or
  /// (`json`) an `already-complete` event.
  func alreadyComplete(_ output: String) {
    let message = "\(output): already complete and matches this conversion; nothing to do"
    guard style == .json else { return print(message) }
    writeJSON([JSONMember("event", .string("already-complete")), JSONMember("message", .string(message))])
  }

  private func drawBar(_ event: ProgressEvent) {
    let line: String? = state.withLock { state in
      switch event {
      case .started(let total, _):
        state.total = total
        state.start = Date()
        return nil
      case .wrote(_, let done):
        state.done = done
        let now = Date()
        guard now.timeIntervalSince(state.lastDraw) > 0.1 || done == state.total else { return nil }
        state.lastDraw = now
        let elapsed = max(now.timeIntervalSince(state.start), 1e-3)
        let fraction = state.total > 0 ? Double(done) / Double(state.total) : 1
        let rate = Double(done) / elapsed / 1e9
        let eta = rate > 0 ? Double(state.total - done) / (rate * 1e9) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        return String(
          format: "\r[%@%@] %5.1f%%  %.2f/%.2f GB  %.2f GB/s  ETA %@", String(repeating: "#", count: filled),
          String(repeating: ".", count: width - filled), fraction * 100, Double(done) / 1e9, Double(state.total) / 1e9,
          rate, Self.duration(eta))
      default:
        return nil
      }
    }
    if let line { FileHandle.standardError.write(Data(line.utf8)) }
  }

  /// Ends the bar's line.
  func close() {
    if style == .bar { FileHandle.standardError.write(Data("\n".utf8)) }
  }

  private static func duration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    return total >= 3600
      ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
      : String(format: "%d:%02d", total / 60, total % 60)
  }
}
