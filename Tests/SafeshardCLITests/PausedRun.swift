import Foundation

/// A `safeshard` process started with a `pause-at:EVENT@FIFO` fault: ``waitUntilPaused()``
/// returns once it waits at `EVENT`, and ``release()`` lets it go on.
final class PausedRun {
  let process = Process()
  let fifo: String
  private let errors = Pipe()
  private let output = Pipe()
  private var writer: Int32 = -1

  /// Starts `safeshard arguments` paused at `event` (see `FaultInjection`), with a FIFO in
  /// `scratch`.
  init(_ arguments: [String], pausedAt event: String, scratch: URL, environment: [String: String] = [:]) throws {
    fifo = scratch.appendingPathComponent("pause-\(UUID().uuidString)").path
    guard mkfifo(fifo, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown) }
    process.executableURL = CLIRunner.executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(
      environment.merging(["SAFESHARD_FAULT": "pause-at:\(event)@\(fifo)"]) { _, new in new }
    ) { _, new in new }
    process.standardOutput = output
    process.standardError = errors
    try process.run()
  }

  /// Waits until the process waits at its event (it opened the FIFO); `false` when it ended or
  /// 60 s passed first.
  func waitUntilPaused() -> Bool {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline, process.isRunning {
      // Opening a FIFO for writing without blocking fails (ENXIO) until a reader has it open.
      writer = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
      if writer >= 0 { return true }
      usleep(5_000)
    }
    return false
  }

  /// Reads standard error until it contains `text` (or ends); returns what was read.
  func readErrors(until text: String) -> String {
    var read = Data()
    let handle = errors.fileHandleForReading
    while !String(decoding: read, as: UTF8.self).contains(text) {
      let chunk = handle.availableData
      if chunk.isEmpty { break }
      read.append(chunk)
    }
    return String(decoding: read, as: UTF8.self)
  }

  /// Lets the process go on, waits for it to end, and returns its exit status and the rest of
  /// its standard error.
  func release() -> (status: Int32, standardError: String) {
    if writer >= 0 { close(writer) }
    writer = -1
    let rest = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: rest, as: UTF8.self))
  }

  /// Reads standard output until it holds a whole line, it ends, or nothing arrives for 20 s;
  /// returns what was read.
  func readOutputLine() -> Data {
    var read = Data()
    let handle = output.fileHandleForReading
    while !read.contains(UInt8(ascii: "\n")) {
      var ready = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
      guard poll(&ready, 1, 20_000) > 0 else { break }
      let chunk = handle.availableData
      if chunk.isEmpty { break }
      read.append(chunk)
    }
    return read
  }

  /// Everything the process wrote on standard output, once it has ended.
  func standardOutput() -> String {
    String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  }

  deinit {
    if writer >= 0 { close(writer) }
    if process.isRunning { process.terminate() }
    unlink(fifo)
  }
}
