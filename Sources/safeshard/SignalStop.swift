import Dispatch
import Foundation
import Synchronization

/// Turns SIGINT and SIGTERM into cancellation of the running conversion, once; a second signal
/// ends the process at once.
///
/// Install it before anything slow, then say what a signal stops with ``onStop(_:)``: a signal
/// that comes in between is kept and acted on then.
final class SignalStop: Sendable {
  struct Received: Sendable {
    var number: Int32
    var name: String
  }

  private let state = Mutex<(received: Received?, stop: (@Sendable () -> Void)?)>((nil, nil))
  private let sources = Mutex<[DispatchSourceSignal]>([])

  /// The first signal received, if any.
  var received: Received? { state.withLock { $0.received } }

  /// Starts listening.
  func install() {
    sources.withLock { sources in
      for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { [self] in
          let (first, stop) = state.withLock { state -> (Bool, (@Sendable () -> Void)?) in
            guard state.received == nil else { return (false, nil) }
            state.received = Received(number: number, name: name)
            return (true, state.stop)
          }
          if first {
            FileHandle.standardError.write(Data("\nsafeshard: \(name) received, stopping…\n".utf8))
            stop?()
          } else {
            exit(128 + number)
          }
        }
        source.resume()
        sources.append(source)
      }
    }
  }

  /// Runs `stop` on the first signal; at once when it came already.
  func onStop(_ stop: @escaping @Sendable () -> Void) {
    let received = state.withLock { state in
      state.stop = stop
      return state.received != nil
    }
    if received { stop() }
  }
}
