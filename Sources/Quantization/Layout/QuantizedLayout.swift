/// Everything a caller needs to plan a quantized tensor before any data moves: the parts torchao
/// stores, their sizes and shapes, and how the input is cut into chunks.
///
/// The input is viewed as `rowCount` rows of `rowLength` elements (`[N, K]`, or `[E·N, K]` for a
/// 3-D `[E, N, K]` weight). A chunk is any run of whole rows that starts at a multiple of
/// ``rowAlignment`` and ends at one or at ``rowCount``; quantizing all chunks gives the same bytes
/// as quantizing the tensor at once.
public struct QuantizedLayout: Sendable, Hashable {
  /// The input shape.
  public let shape: [Int]
  /// The number of input rows: the product of all dimensions but the last.
  public let rowCount: Int
  /// The number of elements in a row: the last dimension.
  public let rowLength: Int
  /// Chunks start at a multiple of this many rows: 1, or 128 where swizzled scales are stored in
  /// 128-row tiles.
  public let rowAlignment: Int
  /// The stored parts, in torchao's `_tensor_data_names` order.
  public let parts: [PartLayout]

  init(shape: [Int], rowAlignment: Int = 1, parts: [PartLayout]) {
    self.shape = shape
    self.rowCount = shape.dropLast().reduce(1, *)
    self.rowLength = shape.last ?? 0
    self.rowAlignment = rowAlignment
    self.parts = parts
  }

  /// The part named `name`, or `nil` when the scheme stores no such part.
  public func part(_ name: PartName) -> PartLayout? {
    parts.first { $0.name == name }
  }

  /// Checks a chunk request against this layout and returns the output buffers by part, each
  /// exactly the bytes of its part for these rows (an empty part's buffer is empty).
  ///
  /// - Throws: `invalidArgument` when the rows are out of range or misaligned, the input is not
  ///   exactly those rows, or an output buffer is missing or has the wrong size.
  func checkChunk(
    rows: Range<Int>, inputCount: Int, format: FloatFormat, outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) -> [PartName: UnsafeMutableRawBufferPointer] {
    guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
      throw QuantizationError(.invalidArgument, "rows \(rows) are outside the \(rowCount) rows of shape \(shape)")
    }
    guard rows.lowerBound % rowAlignment == 0, rows.upperBound % rowAlignment == 0 || rows.upperBound == rowCount
    else {
      throw QuantizationError(
        .invalidArgument, "rows \(rows) of shape \(shape) do not start and end on \(rowAlignment)-row tiles")
    }
    let expected = rows.count * rowLength * format.byteWidth
    guard inputCount == expected else {
      throw QuantizationError(
        .invalidArgument, "input for rows \(rows) of shape \(shape) has \(inputCount) bytes, expected \(expected)")
    }
    var checked: [PartName: UnsafeMutableRawBufferPointer] = [:]
    for part in parts where part.placement != .tensor {
      let size = part.byteRange(rows: rows).count
      guard let buffer = outputs[part.name], buffer.count == size else {
        throw QuantizationError(
          .invalidArgument,
          "output \(part.name.rawValue) for rows \(rows) needs a buffer of \(size) bytes, "
            + "got \(outputs[part.name]?.count ?? 0)"
        )
      }
      checked[part.name] = buffer
    }
    return checked
  }

  /// Checks a dequantizing request against this layout and returns the part buffers by name,
  /// each exactly ``PartLayout/readRange(rows:)`` of its part.
  ///
  /// - Throws: `invalidArgument` when the rows are empty or out of range, the output is not
  ///   exactly those rows in `format`, or a part buffer is missing or has the wrong size.
  func checkDequantizing(
    rows: Range<Int>, format: FloatFormat, parts: [PartName: UnsafeRawBufferPointer],
    output: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) -> [PartName: UnsafeRawBufferPointer] {
    guard !rows.isEmpty, rows.lowerBound >= 0, rows.upperBound <= rowCount else {
      throw QuantizationError(.invalidArgument, "rows \(rows) are not rows of the \(rowCount) of shape \(shape)")
    }
    let expected = rows.count * rowLength * format.byteWidth
    guard output.count == expected else {
      throw QuantizationError(
        .invalidArgument, "output for rows \(rows) of shape \(shape) has \(output.count) bytes, expected \(expected)")
    }
    var checked: [PartName: UnsafeRawBufferPointer] = [:]
    for part in self.parts {
      let size = part.readRange(rows: rows).count
      guard let buffer = parts[part.name], buffer.count == size else {
        throw QuantizationError(
          .invalidArgument,
          "part \(part.name.rawValue) for rows \(rows) needs a buffer of \(size) bytes, got \(parts[part.name]?.count ?? 0)"
        )
      }
      checked[part.name] = buffer
    }
    return checked
  }
}
