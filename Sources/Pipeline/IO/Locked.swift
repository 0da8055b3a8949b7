import Synchronization

/// A value behind a lock, shared by reference between tasks.
final class Locked<Value: Sendable>: Sendable {
  private let mutex: Mutex<Value>

  init(_ value: Value) {
    mutex = Mutex(value)
  }

  func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
    try mutex.withLock { value throws(E) in try body(&value) }
  }

  var value: Value { mutex.withLock { $0 } }
}
