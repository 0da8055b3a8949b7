/// Where writing one shard starts in this run, decided once, before any data moves, from the
/// journals and the files on disk (``RunState``).
///
/// Every stage asks it: a writer exists only for a shard that is ``resume(dataOffset:)`` or
/// ``fresh``, the producer runs only the tensors with bytes a shard still ``needs(_:)``, and a
/// piece it does not need is dropped before it reaches a writer.
enum ShardStart: Sendable, Equatable {
  /// Another worker writes it.
  case notOwned
  /// It is finished and in place; nothing of it is written again.
  case finished(ShardWriter.Result)
  /// Its partial file holds the header and the first `dataOffset` data bytes, durable and
  /// checked; writing continues after them.
  case resume(dataOffset: Int)
  /// It is written from the start.
  case fresh

  /// Whether this run still writes bytes `range` of the shard's data (offsets from the end of
  /// its header).
  func needs(_ range: Range<Int>) -> Bool {
    switch self {
    case .notOwned, .finished: false
    case .resume(let offset): range.upperBound > offset
    case .fresh: true
    }
  }

  /// Whether this run writes the shard (it has a writer).
  var isWritten: Bool {
    switch self {
    case .resume, .fresh: true
    case .notOwned, .finished: false
    }
  }
}
