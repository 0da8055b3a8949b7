import Foundation

/// Bytes on their way to an output shard: where they go, and the memory that holds them.
///
/// A piece owns its buffer (freed with the last reference) and the budget reservation of its
/// size, which is released once its bytes are written or spilled.
struct Piece: Sendable {
  /// The shard the bytes belong to.
  var shard: Int
  /// Their offset in the shard's data section.
  var offset: Int
  /// The bytes.
  var buffer: PieceBuffer
  /// The element width of the data (1, 2, 4 or 8), for the spill codec's byte planes.
  var elementWidth: Int

  var count: Int { buffer.bytes.count }
}
