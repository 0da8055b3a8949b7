/// torchao's `Int8Tensor` (`Int8WeightOnlyConfig(version=2)`,
/// `Int8DynamicActivationInt8WeightConfig(version=2)`): symmetric int8 with fp32 scales.
///
/// Per block: `scale = max(R_dt(amax ⊘ 127.5), 2⁻²³)` (computed in the input format, stored as
/// fp32, so bf16 weights get bf16-valued scales) and `qdata = clamp(rint(x ⊗ (1 ⊘ scale)), −128,
/// 127)` in fp32 with ties to even; −128 is reachable. `reduceRange` uses 63.5 and `[−64, 63]`.
/// The eps 2⁻²³ applies to every input format. 2-D `[N, K]` and 3-D `[E, N, K]` weights.
///
/// Parts, in torchao's order:
/// - `zero_point`: `I8`, the scale's shape, all zeros.
/// - `qdata`: `I8`, the weight's shape.
/// - `scale`: `F32`, `[N, 1]` (per row), `[N, K/g]` (per group) or `[1, 1]` (per tensor); with a
///   leading `E` (or `[1, 1, 1]`) for 3-D.
///
/// Per-tensor scales need an ``AbsMaxStatistic``; their `scale` and `zero_point` come from
/// ``tensorParts(shape:statistic:)``.
public struct Int8Scheme: QuantizationScheme {
  /// The input format.
  public var source: FloatFormat
  /// Which elements share a scale.
  public var granularity: Granularity
  /// Whether to use torchao's `reduce_range` (`[−64, 63]`).
  public var reduceRange: Bool

  /// Creates an Int8 scheme; torchao's defaults are per-row without reduced range.
  public init(source: FloatFormat, granularity: Granularity = .perRow, reduceRange: Bool = false) {
    self.source = source
    self.granularity = granularity
    self.reduceRange = reduceRange
  }

  private static let eps: Float = 0x1p-23
  private var qmin: Float { reduceRange ? -64 : -128 }
  private var qmax: Float { reduceRange ? 63 : 127 }

  private func grid(_ shape: [Int]) throws(QuantizationError) -> BlockGrid {
    try BlockGrid(shape: shape, granularity: granularity, ranks: 2...3, scheme: "Int8Tensor")
  }

  /// The fp32 scale of a block whose largest magnitude is `amax`.
  private func scale(amax: Float) -> Float {
    let scale = source.round(amax / ((qmax - qmin) / 2))
    return scale < Self.eps ? Self.eps : scale
  }

  /// The parts of ``Int8Scheme`` for `shape` (see the type's documentation).
  ///
  /// - Throws: `unsupportedShape` for a rank other than 2 or 3, an empty dimension, or K not a
  ///   multiple of the group size; `invalidScheme` for a group size below 1.
  public func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout {
    let grid = try grid(shape)
    return QuantizedLayout(
      shape: shape,
      parts: [
        PartLayout(.zeroPoint, .i8, grid.scaleShape, grid.scalePlacement(.i8)),
        PartLayout(.qdata, .i8, shape, .rows(bytesPerRow: grid.rowLength)),
        PartLayout(.scale, .f32, grid.scaleShape, grid.scalePlacement(.f32)),
      ])
  }

  /// A whole-tensor statistic for per-tensor scales, else `nil`.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic? {
    let grid = try grid(shape)
    guard grid.perTensor else { return nil }
    return AbsMaxStatistic(format: source, rowLength: grid.rowLength, rowsPerGroup: grid.rowCount, groupCount: 1)
  }

  /// Quantizes input `rows` into `qdata` (and per-row or per-group `scale` and `zero_point`).
  ///
  /// - Throws: `invalidArgument` for mismatched rows, buffers, or a missing per-tensor statistic;
  ///   what ``outputLayout(shape:)`` throws.
  public func quantize(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) {
    let grid = try grid(shape)
    let layout = try outputLayout(shape: shape)
    let out = try layout.checkChunk(rows: rows, inputCount: input.count, format: source, outputs: outputs)
    let tensorScale = try grid.perTensor ? scale(amax: perTensorAmax(statistic, layout)) : 0
    guard let base = input.baseAddress, !rows.isEmpty else { return }
    let qdata = out[.qdata]!.assumingMemoryBound(to: Int8.self).baseAddress!
    let (scaleOutput, zeroPointOutput) = (out[.scale], out[.zeroPoint])
    let (qmin, qmax, length, blocks) = (qmin, qmax, grid.blockLength, grid.blocksPerRow)
    for local in 0..<rows.count {
      for block in 0..<blocks {
        let start = local * grid.rowLength + block * length
        let values = base + start * source.byteWidth
        let blockScale =
          grid.perTensor ? tensorScale : scale(amax: RowKernels.absMax(values, count: length, format: source))
        if !grid.perTensor {
          let index = local * blocks + block
          scaleOutput!.storeBytes(of: blockScale.bitPattern.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
          zeroPointOutput!.storeBytes(of: 0, toByteOffset: index, as: Int8.self)
        }
        Self.quantize(
          values, count: length, format: source, reciprocal: 1 / blockScale, qmin, qmax, into: qdata + start)
      }
    }
  }

  /// `clamp(rint(x ⊗ reciprocal), qmin, qmax)` for each of `count` values of `format` at `values`.
  private static func quantize(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, reciprocal: Float, _ qmin: Float, _ qmax: Float,
    into codes: UnsafeMutablePointer<Int8>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = Int8(
        truncatingIfNeeded: IntegerRounding.int32(IntegerRounding.clamp(value * reciprocal, qmin, qmax)))
    }
  }

  private func perTensorAmax(_ statistic: AbsMaxStatistic?, _ layout: QuantizedLayout) throws(QuantizationError)
    -> Float
  {
    guard let statistic else {
      throw QuantizationError(.invalidArgument, "Int8Tensor per-tensor scales need the tensor's AbsMaxStatistic")
    }
    try statistic.check(layout, format: source, rowsPerGroup: layout.rowCount)
    return statistic.values[0]
  }

  /// The per-tensor `scale` (fp32) and `zero_point` (int8 0); empty for other granularities.
  ///
  /// - Throws: `invalidArgument` when a per-tensor statistic is missing or belongs to another
  ///   tensor; what ``outputLayout(shape:)`` throws.
  public func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]] {
    let layout = try outputLayout(shape: shape)
    guard granularity == .perTensor else { return [:] }
    let bits = scale(amax: try perTensorAmax(statistic, layout)).bitPattern
    return [.scale: (0..<4).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) }, .zeroPoint: [0]]
  }

  /// `R_dt(f32(q) ⊗ scale)` for every element of `rows` (see
  /// ``QuantizationScheme/dequantize(rows:shape:parts:into:)``).
  ///
  /// - Throws: `invalidArgument` for rows or buffers that do not match; what
  ///   ``outputLayout(shape:)`` throws.
  public func dequantize(
    rows: Range<Int>, shape: [Int], parts: [PartName: UnsafeRawBufferPointer],
    into output: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    let grid = try grid(shape)
    let parts = try outputLayout(shape: shape).checkDequantizing(
      rows: rows, format: source, parts: parts, output: output)
    let (qdata, scales) = (parts[.qdata]!, parts[.scale]!)
    let (length, blocks) = (grid.blockLength, grid.blocksPerRow)
    for local in 0..<rows.count {
      for block in 0..<blocks {
        let scale = PartBytes.float32(scales, grid.perTensor ? 0 : local * blocks + block)
        let start = local * grid.rowLength + block * length
        source.storeDequantized(codes: qdata, range: start..<start + length, in: output) {
          Float(Int8(bitPattern: $0)) * scale
        }
      }
    }
  }
}
