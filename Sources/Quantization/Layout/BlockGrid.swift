/// How a `[N, K]` or `[E, N, K]` tensor splits into blocks that share one scale, for the schemes
/// built on ``Granularity`` (Int8, Float8, intx).
struct BlockGrid: Hashable {
  /// The input shape.
  let shape: [Int]
  /// Rows: the product of all dimensions but the last.
  let rowCount: Int
  /// Elements per row (K).
  let rowLength: Int
  /// Elements per block within a row (K for per-row and per-tensor).
  let blockLength: Int
  /// Whether one block spans the whole tensor.
  let perTensor: Bool

  /// Checks `shape` and `granularity` for scheme `scheme` and builds the grid.
  ///
  /// - Throws: `unsupportedShape` for a rank not in `ranks`, a zero dimension, or K not a multiple
  ///   of the group size; `invalidScheme` for a group size below 1 or per-column scales (whose
  ///   blocks cross rows; ``Float8Scheme`` lays them out itself).
  init(shape: [Int], granularity: Granularity, ranks: ClosedRange<Int>, scheme: String) throws(QuantizationError) {
    try Self.check(shape: shape, ranks: ranks, scheme: scheme)
    self.shape = shape
    rowLength = shape[shape.count - 1]
    rowCount = shape.dropLast().reduce(1, *)
    switch granularity {
    case .perRow:
      blockLength = rowLength
      perTensor = false
    case .perTensor:
      blockLength = rowLength
      perTensor = true
    case .perGroup(let groupSize):
      guard groupSize >= 1 else {
        throw QuantizationError(.invalidScheme, "\(scheme): group size \(groupSize) must be at least 1")
      }
      guard rowLength % groupSize == 0 else {
        throw QuantizationError(
          .unsupportedShape,
          "\(scheme): K = \(rowLength) of shape \(shape) is not a multiple of group size \(groupSize)")
      }
      blockLength = groupSize
      perTensor = false
    case .perColumn:
      throw QuantizationError(.invalidScheme, "\(scheme) does not take per-column scales (torchao PerRow(1))")
    }
  }

  /// Scales per row (1 for per-tensor, which shares one scale among all rows).
  var blocksPerRow: Int { rowLength / blockLength }

  /// torchao's scale shape: `[.., N, 1]`, `[.., N, K/g]`, or all ones for per-tensor.
  var scaleShape: [Int] {
    perTensor ? Array(repeating: 1, count: shape.count) : shape.dropLast() + [blocksPerRow]
  }

  /// The placement of a scale-shaped part of `elementType`.
  func scalePlacement(_ elementType: ElementType) -> PartPlacement {
    perTensor ? .tensor : .rows(bytesPerRow: blocksPerRow * elementType.byteWidth)
  }

  /// Checks that `shape` has a rank in `ranks` and no zero dimension.
  ///
  /// - Throws: `unsupportedShape` naming `scheme` otherwise.
  static func check(shape: [Int], ranks: ClosedRange<Int>, scheme: String) throws(QuantizationError) {
    guard ranks.contains(shape.count) else {
      let allowed = ranks.map { "\($0)-D" }.joined(separator: " or ")
      throw QuantizationError(.unsupportedShape, "\(scheme) quantizes \(allowed) weights, not shape \(shape)")
    }
    guard shape.allSatisfy({ $0 > 0 }) else {
      throw QuantizationError(.unsupportedShape, "\(scheme) cannot quantize shape \(shape) with an empty dimension")
    }
    var elements = 1
    for dimension in shape {
      let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
      guard !overflow, product <= Int.max / 8 else {
        throw QuantizationError(.unsupportedShape, "\(scheme): the element count of shape \(shape) is too large")
      }
      elements = product
    }
  }
}
