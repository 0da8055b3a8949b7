/// One data part of a quantized tensor as torchao stores it: name, element type, shape, size and
/// how its bytes follow the input rows.
public struct PartLayout: Sendable, Hashable {
  /// torchao's name for the part (`qdata`, `scale`, ...).
  public let name: PartName
  /// The stored element type.
  public let elementType: ElementType
  /// The stored shape, exactly as torchao writes it (`[]` for a 0-d tensor).
  public let shape: [Int]
  /// The number of bytes of the whole part.
  public let byteCount: Int
  /// How chunks of rows map onto the part's bytes.
  public let placement: PartPlacement

  /// Creates a part layout; the byte count follows from the shape and element type.
  init(_ name: PartName, _ elementType: ElementType, _ shape: [Int], _ placement: PartPlacement) {
    self.name = name
    self.elementType = elementType
    self.shape = shape
    self.byteCount = shape.reduce(elementType.byteWidth, *)
    self.placement = placement
  }

  /// The bytes of the part that a chunk of input `rows` writes: a row or tile range for
  /// ``PartPlacement/rows(bytesPerRow:)`` and ``PartPlacement/tiles(rowsPerTile:bytesPerTile:)``
  /// (a partial last tile counts whole), the whole part for ``PartPlacement/gathered``, and an
  /// empty range for ``PartPlacement/tensor``.
  ///
  /// - Parameter rows: rows of the input viewed as `[rowCount, K]`; for tiled parts they must
  ///   start on a tile boundary (see ``QuantizedLayout/rowAlignment``).
  public func byteRange(rows: Range<Int>) -> Range<Int> {
    switch placement {
    case .rows(let bytesPerRow):
      return rows.lowerBound * bytesPerRow..<rows.upperBound * bytesPerRow
    case .tiles(let rowsPerTile, let bytesPerTile):
      let first = rows.lowerBound / rowsPerTile
      let end = (rows.upperBound + rowsPerTile - 1) / rowsPerTile
      return first * bytesPerTile..<end * bytesPerTile
    case .gathered:
      return 0..<byteCount
    case .tensor:
      return 0..<0
    }
  }

  /// The bytes of the part that dequantizing input `rows` reads: those ``byteRange(rows:)``
  /// names for row and tile parts (whole tiles; `rows` may start inside one), the whole part for
  /// ``PartPlacement/gathered`` and ``PartPlacement/tensor`` parts.
  public func readRange(rows: Range<Int>) -> Range<Int> {
    switch placement {
    case .rows, .tiles: byteRange(rows: rows)
    case .gathered, .tensor: 0..<byteCount
    }
  }
}
