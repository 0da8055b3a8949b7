/// Where one ``SpillFile/append(_:elementWidth:)`` put its bytes: the handle to read them back.
public struct SpillRecord: Sendable, Hashable {
  /// The byte offset in the spill file of the record's first block.
  public let offset: Int
  /// The bytes the record's blocks take in the spill file.
  public let storedLength: Int
  /// The bytes that were appended, and that ``SpillFile/read(_:into:)`` gives back.
  public let originalLength: Int
}
