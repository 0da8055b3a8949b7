/// The largest magnitude of a tensor, or of each expert of a 3-D tensor, gathered over chunks:
/// the statistic behind per-tensor scales (Int8 and Float8 `PerTensor`, NVFP4
/// `per_tensor_scale`).
///
/// Make an empty one with ``QuantizationScheme/makeStatistic(shape:)``, feed it every row once
/// (chunks in any order, on any number of copies that are ``merge(_:)``d), then hand the finished
/// value to the chunk quantizer. A NaN anywhere makes the group's maximum NaN, as `torch.amax`
/// does.
public struct AbsMaxStatistic: Sendable, Hashable {
  /// The input format.
  public let format: FloatFormat
  /// Elements per row.
  public let rowLength: Int
  /// Rows per group: all rows for a per-tensor statistic, `N` for a per-expert one.
  public let rowsPerGroup: Int
  /// The fp32 bit pattern of each group's largest magnitude so far; unsigned order on these is
  /// magnitude order with NaN above infinity.
  private var magnitudeBits: [UInt32]

  init(format: FloatFormat, rowLength: Int, rowsPerGroup: Int, groupCount: Int) {
    self.format = format
    self.rowLength = rowLength
    self.rowsPerGroup = rowsPerGroup
    self.magnitudeBits = Array(repeating: 0, count: groupCount)
  }

  /// The largest magnitude of each group (0 for a group that saw no rows), exact.
  public var values: [Float] {
    magnitudeBits.map { Float(bitPattern: $0 > 0x7F80_0000 ? 0x7FC0_0000 : $0) }
  }

  /// Adds input rows `firstRow ..< firstRow + n` whose raw bytes are `rows`.
  ///
  /// - Throws: `invalidArgument` when `rows` is not a whole number of rows or runs past the
  ///   tensor.
  public mutating func accumulate(_ rows: UnsafeRawBufferPointer, firstRow: Int) throws(QuantizationError) {
    let rowBytes = rowLength * format.byteWidth
    let count = rowBytes == 0 ? 0 : rows.count / rowBytes
    guard rows.count == count * rowBytes, firstRow >= 0, firstRow + count <= rowsPerGroup * magnitudeBits.count
    else {
      throw QuantizationError(
        .invalidArgument,
        "\(rows.count) bytes from row \(firstRow) are not whole rows of the \(rowsPerGroup * magnitudeBits.count)")
    }
    guard let base = rows.baseAddress else { return }
    for row in 0..<count {
      let bits = RowKernels.magnitudeBits(base + row * rowBytes, count: rowLength, format: format)
      let group = (firstRow + row) / rowsPerGroup
      magnitudeBits[group] = max(magnitudeBits[group], bits)
    }
  }

  /// Folds in a statistic gathered over other rows of the same tensor.
  ///
  /// - Throws: `invalidArgument` when `other` belongs to a different shape or format.
  public mutating func merge(_ other: AbsMaxStatistic) throws(QuantizationError) {
    guard other.format == format, other.rowLength == rowLength, other.rowsPerGroup == rowsPerGroup,
      other.magnitudeBits.count == magnitudeBits.count
    else {
      throw QuantizationError(.invalidArgument, "cannot merge statistics of different tensors")
    }
    for index in magnitudeBits.indices {
      magnitudeBits[index] = max(magnitudeBits[index], other.magnitudeBits[index])
    }
  }

  /// Checks that this statistic belongs to `layout` viewed in groups of `rowsPerGroup` rows.
  func check(_ layout: QuantizedLayout, format: FloatFormat, rowsPerGroup: Int) throws(QuantizationError) {
    guard self.format == format, rowLength == layout.rowLength, self.rowsPerGroup == rowsPerGroup,
      magnitudeBits.count * rowsPerGroup == layout.rowCount
    else {
      throw QuantizationError(
        .invalidArgument, "the statistic was made for a different tensor than shape \(layout.shape)")
    }
  }
}
