import Dispatch
import Foundation
import Synchronization

/// Turns SIGINT and SIGTERM into cancellation of the running conversion, once; a second signal
/// ends the process at once.
final class SignalStop: Sendable {
  struct Received: Sendable {
    var number: Int32
    var name: String
  }

  private let state = Mutex<(received: Received?, sources: [DispatchSourceSignal])>((nil, []))

  /// The first signal received, if any.
  var received: Received? { state.withLock { $0.received } }

  /// Starts listening; `stop` runs on the first signal.
  func install(_ stop: @escaping @Sendable () -> Void) {
    var sources: [DispatchSourceSignal] = []
    for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { [self] in
        let first = state.withLock { state -> Bool in
          guard state.received == nil else { return false }
          state.received = Received(number: number, name: name)
          return true
        }
        if first {
          FileHandle.standardError.write(Data("\nsafeshard: \(name) received, stopping…\n".utf8))
          stop()
        } else {
          exit(128 + number)
        }
      }
      source.resume()
      sources.append(source)
    }
    state.withLock { $0.sources = sources }
  }
}
