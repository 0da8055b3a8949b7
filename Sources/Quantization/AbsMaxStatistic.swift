/// The largest magnitude of a tensor, of each expert of a 3-D tensor, or of each column of each
/// expert, gathered over chunks: the statistic behind scales that span rows (Int8 and Float8
/// `PerTensor`, NVFP4 `per_tensor_scale`, Float8 per-column `PerRow(1)`).
///
/// The rows fall into groups of ``rowsPerGroup`` consecutive rows (the whole tensor, or one
/// expert); each group keeps ``columns`` maxima: 1 (the group's largest magnitude) or one per
/// column (element index within the row).
///
/// Make an empty one with ``QuantizationScheme/makeStatistic(shape:)``, feed it every row once
/// (chunks in any order, on any number of copies that are ``merge(_:)``d), then hand the finished
/// value to the chunk quantizer. A NaN makes its maximum NaN, as `torch.amax` does.
public struct AbsMaxStatistic: Sendable, Hashable {
  /// The input format.
  public let format: FloatFormat
  /// Elements per row.
  public let rowLength: Int
  /// Rows per group: all rows for a per-tensor statistic, `N` for a per-expert one, `K` for a
  /// per-column one on `[E, K, N]`.
  public let rowsPerGroup: Int
  /// Maxima per group: 1 for the group's largest magnitude, ``rowLength`` for one per column.
  public let columns: Int
  /// The fp32 bit pattern of each maximum so far, group by group (`columns` per group); unsigned
  /// order on these is magnitude order with NaN above infinity.
  private var magnitudeBits: [UInt32]

  init(format: FloatFormat, rowLength: Int, rowsPerGroup: Int, groupCount: Int, perColumn: Bool = false) {
    self.format = format
    self.rowLength = rowLength
    self.rowsPerGroup = rowsPerGroup
    self.columns = perColumn ? rowLength : 1
    self.magnitudeBits = Array(repeating: 0, count: groupCount * columns)
  }

  /// The number of groups.
  public var groupCount: Int { columns == 0 ? 0 : magnitudeBits.count / columns }

  /// The bytes the maxima take (4 each): what a copy of the statistic costs, for a memory budget
  /// (a per-column statistic of `[E, K, N]` holds `E·N` maxima).
  public var byteCount: Int { 4 * magnitudeBits.count }

  /// The maxima (0 where no row was seen), exact: one per group, or `columns` per group, group by
  /// group.
  public var values: [Float] {
    magnitudeBits.map(Self.float)
  }

  /// The `columns` maxima of group `group`.
  func values(group: Int) -> [Float] {
    magnitudeBits[group * columns..<(group + 1) * columns].map(Self.float)
  }

  private static func float(_ bits: UInt32) -> Float {
    Float(bitPattern: bits > 0x7F80_0000 ? 0x7FC0_0000 : bits)
  }

  /// Adds input rows `firstRow ..< firstRow + n` whose raw bytes are `rows`.
  ///
  /// - Throws: `invalidArgument` when `rows` is not a whole number of rows or runs past the
  ///   tensor.
  public mutating func accumulate(_ rows: UnsafeRawBufferPointer, firstRow: Int) throws(QuantizationError) {
    let rowBytes = rowLength * format.byteWidth
    let count = rowBytes == 0 ? 0 : rows.count / rowBytes
    let totalRows = rowsPerGroup * groupCount
    guard rows.count == count * rowBytes, firstRow >= 0, firstRow + count <= totalRows else {
      throw QuantizationError(
        .invalidArgument, "\(rows.count) bytes from row \(firstRow) are not whole rows of the \(totalRows)")
    }
    guard let base = rows.baseAddress, count > 0 else { return }
    guard columns > 1 else {
      for row in 0..<count {
        let bits = RowKernels.magnitudeBits(base + row * rowBytes, count: rowLength, format: format)
        let group = (firstRow + row) / rowsPerGroup
        magnitudeBits[group] = max(magnitudeBits[group], bits)
      }
      return
    }
    // Per column: reduce the chunk's rows of each group on the format's own bit patterns, then
    // widen the group's maxima once.
    let (columns, format) = (columns, format)
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: columns) { scratch in
      let maxima = scratch.baseAddress!
      var row = 0
      while row < count {
        let group = (firstRow + row) / rowsPerGroup
        let end = min(count, (group + 1) * rowsPerGroup - firstRow)
        scratch.initialize(repeating: 0)
        for local in row..<end {
          RowKernels.raiseMagnitudes(base + local * rowBytes, count: columns, format: format, into: maxima)
        }
        magnitudeBits.withUnsafeMutableBufferPointer { bits in
          for column in 0..<columns {
            let widened = RowKernels.widenedMagnitudeBits(maxima[column], format: format)
            bits[group * columns + column] = max(bits[group * columns + column], widened)
          }
        }
        row = end
      }
    }
  }

  /// Folds in a statistic gathered over other rows of the same tensor.
  ///
  /// - Throws: `invalidArgument` when `other` belongs to a different shape or format.
  public mutating func merge(_ other: AbsMaxStatistic) throws(QuantizationError) {
    guard other.format == format, other.rowLength == rowLength, other.rowsPerGroup == rowsPerGroup,
      other.columns == columns, other.magnitudeBits.count == magnitudeBits.count
    else {
      throw QuantizationError(.invalidArgument, "cannot merge statistics of different tensors")
    }
    for index in magnitudeBits.indices {
      magnitudeBits[index] = max(magnitudeBits[index], other.magnitudeBits[index])
    }
  }

  /// Checks that this statistic belongs to `layout` viewed in groups of `rowsPerGroup` rows, with
  /// per-column maxima or not.
  func check(_ layout: QuantizedLayout, format: FloatFormat, rowsPerGroup: Int, perColumn: Bool = false)
    throws(QuantizationError)
  {
    guard self.format == format, rowLength == layout.rowLength, self.rowsPerGroup == rowsPerGroup,
      columns == (perColumn ? layout.rowLength : 1), groupCount * rowsPerGroup == layout.rowCount
    else {
      throw QuantizationError(
        .invalidArgument, "the statistic was made for a different tensor than shape \(layout.shape)")
    }
  }
}
