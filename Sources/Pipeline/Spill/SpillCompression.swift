/// How spilled staging data is stored on disk (`--spill-compression lz4|none`).
///
/// The choice changes only the spill file's size and the time spent spilling: the output shards are byte-identical
/// whichever is chosen.
public enum SpillCompression: String, Sendable, Hashable, CaseIterable {
  /// Each element's bytes are split into planes (one per byte position) and every plane is compressed with LZ4; a
  /// plane, or a whole block, that does not shrink is stored raw.
  case lz4
  /// Blocks are stored raw (still checksummed).
  case none
}
