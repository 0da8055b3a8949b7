/// torchao's `Float8Tensor` on the torch kernel path (`Float8WeightOnlyConfig`,
/// `Float8DynamicActivationFloat8WeightConfig`): float8 e4m3fn with fp32 scales.
///
/// Per block: `scale = R_dt(amax ⊘ 448)` (computed in the input format, stored as fp32) and
/// `qdata = e4m3fn(clamp(x ⊘ scale, −448, 448))` with true division and ties to even. 2-D
/// `[N, K]` and 3-D `[E, N, K]` weights; per-column (torchao `PerRow(1)`) takes only 3-D weights
/// stored transposed, `[E, K, N]`, with one scale per column of each expert (block `[1, K, 1]`).
///
/// torchao quirks kept on purpose: there is **no eps**, so an all-zero block gets scale 0 and
/// `0 ⊘ 0` makes every qdata byte `0xFF` (NaN: x86's default NaN has the sign bit set; this
/// scheme writes `0xFF` for every NaN on every machine), and its dequantized values are NaN. fp16
/// scales underflow to 0 for amax ≲ 1.3e-5 (non-zeros then saturate to ±448).
///
/// The skips of the dynamic config (N or K not a multiple of 16 left unquantized; per-row only
/// for bf16) are config rules for the caller; this scheme quantizes any such shape like
/// `Float8Tensor.from_hp`.
///
/// Parts, in torchao's order:
/// - `qdata`: `F8_E4M3`, the weight's shape.
/// - `scale`: `F32`, `[N, 1]`, `[N, K/g]` or `[1, 1]` (with a leading `E`, or `[1, 1, 1]`, for 3-D);
///   `[E, 1, N]` per column.
///
/// Per-tensor and per-column scales span rows: they need an ``AbsMaxStatistic`` over the whole
/// tensor, and their `scale` comes from ``tensorParts(shape:statistic:)``.
public struct Float8Scheme: QuantizationScheme {
  /// The input format.
  public var source: FloatFormat
  /// Which elements share a scale.
  public var granularity: Granularity

  /// Creates a Float8 scheme; torchao's weight-only default is per-row.
  public init(source: FloatFormat, granularity: Granularity = .perRow) {
    self.source = source
    self.granularity = granularity
  }

  private func grid(_ shape: [Int]) throws(QuantizationError) -> BlockGrid {
    try BlockGrid(shape: shape, granularity: granularity, ranks: 2...3, scheme: "Float8Tensor")
  }

  /// `(E, K, N)` of a per-column weight `[E, K, N]`.
  private static func columnDimensions(_ shape: [Int]) throws(QuantizationError) -> (Int, Int, Int) {
    guard shape.count == 3 else {
      throw QuantizationError(
        .unsupportedShape,
        "Float8Tensor per-column scales (PerRow(1)) need a 3-D [E, K, N] weight, not shape \(shape)")
    }
    try BlockGrid.check(shape: shape, ranks: 3...3, scheme: "Float8Tensor")
    return (shape[0], shape[1], shape[2])
  }

  private func scale(amax: Float) -> Float {
    source.round(amax / Float8E4M3Conversion.greatestFiniteMagnitude)
  }

  /// The parts of ``Float8Scheme`` for `shape` (see the type's documentation).
  ///
  /// - Throws: `unsupportedShape` for a rank other than 2 or 3 (other than 3 per column), an
  ///   empty dimension, or K not a multiple of the group size; `invalidScheme` for a group size
  ///   below 1.
  public func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout {
    if granularity == .perColumn {
      let (experts, _, columns) = try Self.columnDimensions(shape)
      return QuantizedLayout(
        shape: shape,
        parts: [
          PartLayout(.qdata, .f8e4m3, shape, .rows(bytesPerRow: columns)),
          PartLayout(.scale, .f32, [experts, 1, columns], .tensor),
        ])
    }
    let grid = try grid(shape)
    return QuantizedLayout(
      shape: shape,
      parts: [
        PartLayout(.qdata, .f8e4m3, shape, .rows(bytesPerRow: grid.rowLength)),
        PartLayout(.scale, .f32, grid.scaleShape, grid.scalePlacement(.f32)),
      ])
  }

  /// A whole-tensor statistic for per-tensor scales, a per-column one (groups of K rows, one
  /// maximum per column) for per-column scales, else `nil`.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic? {
    if granularity == .perColumn {
      let (experts, rows, columns) = try Self.columnDimensions(shape)
      return AbsMaxStatistic(
        format: source, rowLength: columns, rowsPerGroup: rows, groupCount: experts, perColumn: true)
    }
    let grid = try grid(shape)
    guard grid.perTensor else { return nil }
    return AbsMaxStatistic(format: source, rowLength: grid.rowLength, rowsPerGroup: grid.rowCount, groupCount: 1)
  }

  /// Quantizes input `rows` into `qdata` (and per-row or per-group `scale`).
  ///
  /// - Throws: `invalidArgument` for mismatched rows, buffers, or a missing per-tensor or
  ///   per-column statistic; what ``outputLayout(shape:)`` throws.
  public func quantize(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) {
    if granularity == .perColumn {
      return try quantizeColumns(input, shape: shape, rows: rows, statistic: statistic, into: outputs)
    }
    let grid = try grid(shape)
    let layout = try outputLayout(shape: shape)
    let out = try layout.checkChunk(rows: rows, inputCount: input.count, format: source, outputs: outputs)
    let tensorScale = try grid.perTensor ? scale(amax: perTensorAmax(statistic, layout)) : 0
    guard let base = input.baseAddress, !rows.isEmpty else { return }
    let qdata = out[.qdata]!.assumingMemoryBound(to: UInt8.self).baseAddress!
    let scaleOutput = out[.scale]
    let (length, blocks) = (grid.blockLength, grid.blocksPerRow)
    for local in 0..<rows.count {
      for block in 0..<blocks {
        let start = local * grid.rowLength + block * length
        let values = base + start * source.byteWidth
        let blockScale =
          grid.perTensor ? tensorScale : scale(amax: RowKernels.absMax(values, count: length, format: source))
        if !grid.perTensor {
          scaleOutput!.storeBytes(
            of: blockScale.bitPattern.littleEndian, toByteOffset: 4 * (local * blocks + block), as: UInt32.self)
        }
        Self.quantize(values, count: length, format: source, scale: blockScale, into: qdata + start)
      }
    }
  }

  /// Per column: the scales of the experts the chunk touches come from the statistic; each row
  /// divides element by element by its expert's column scales.
  private func quantizeColumns(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) {
    let layout = try outputLayout(shape: shape)
    let out = try layout.checkChunk(rows: rows, inputCount: input.count, format: source, outputs: outputs)
    let (_, rowsPerExpert, columns) = try Self.columnDimensions(shape)
    let statistic = try columnStatistic(statistic, layout)
    guard let base = input.baseAddress, !rows.isEmpty else { return }
    let qdata = out[.qdata]!.assumingMemoryBound(to: UInt8.self).baseAddress!
    withUnsafeTemporaryAllocation(of: Float.self, capacity: columns) { scratch in
      let scales = scratch.baseAddress!
      var expert = -1
      for local in 0..<rows.count {
        let current = (rows.lowerBound + local) / rowsPerExpert
        if current != expert {
          expert = current
          for (column, amax) in statistic.values(group: expert).enumerated() { scales[column] = scale(amax: amax) }
        }
        let start = local * columns
        Self.quantize(
          base + start * source.byteWidth, count: columns, format: source, scales: scales, into: qdata + start)
      }
    }
  }

  /// `e4m3fn(clamp(x ⊘ scale, −448, 448))` for each of `count` values of `format` at `values`, NaN
  /// as `0xFF`.
  ///
  /// A positive normal scale comes from a finite amax of these values, so no quotient is NaN and
  /// the loop skips the test. Other scales (0, subnormal, infinite, NaN) take every case.
  private static func quantize(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, scale: Float, into codes: UnsafeMutablePointer<UInt8>
  ) {
    if scale.isNormal && scale > 0 {
      RowKernels.forEachValue(values, count: count, format: format) { index, value in
        codes[index] = numberCode(value / scale)
      }
    } else {
      RowKernels.forEachValue(values, count: count, format: format) { index, value in
        codes[index] = code(value / scale)
      }
    }
  }

  /// `e4m3fn(clamp(x ⊘ scaleᵢ, −448, 448))` for each of `count` values of `format` at `values`
  /// with its own scale, NaN as `0xFF`.
  private static func quantize(
    _ values: UnsafeRawPointer, count: Int, format: FloatFormat, scales: UnsafePointer<Float>,
    into codes: UnsafeMutablePointer<UInt8>
  ) {
    RowKernels.forEachValue(values, count: count, format: format) { index, value in
      codes[index] = code(value / scales[index])
    }
  }

  /// The e4m3fn byte of `clamp(quotient, −448, 448)`, NaN as `0xFF`.
  @inline(__always)
  private static func code(_ quotient: Float) -> UInt8 {
    quotient.isNaN ? 0xFF : numberCode(quotient)
  }

  /// ``code(_:)`` of a `quotient` that is not NaN: its magnitude bits clamped to 448's (the clamp
  /// on bits, which order like the magnitudes), then encoded.
  @inline(__always)
  private static func numberCode(_ quotient: Float) -> UInt8 {
    let bits = quotient.bitPattern
    let magnitude = min(Int32(bitPattern: bits & 0x7FFF_FFFF), Int32(bitPattern: Float(448).bitPattern))
    return UInt8(
      truncatingIfNeeded: Float8E4M3Conversion.magnitudeCode(magnitude) | Int32(bitPattern: (bits >> 24) & 0x80))
  }

  private func columnStatistic(_ statistic: AbsMaxStatistic?, _ layout: QuantizedLayout) throws(QuantizationError)
    -> AbsMaxStatistic
  {
    guard let statistic else {
      throw QuantizationError(
        .invalidArgument, "Float8Tensor per-column scales need the tensor's per-column AbsMaxStatistic")
    }
    try statistic.check(layout, format: source, rowsPerGroup: layout.shape[1], perColumn: true)
    return statistic
  }

  private func perTensorAmax(_ statistic: AbsMaxStatistic?, _ layout: QuantizedLayout) throws(QuantizationError)
    -> Float
  {
    guard let statistic else {
      throw QuantizationError(.invalidArgument, "Float8Tensor per-tensor scales need the tensor's AbsMaxStatistic")
    }
    try statistic.check(layout, format: source, rowsPerGroup: layout.rowCount)
    return statistic.values[0]
  }

  /// The per-tensor or per-column `scale` (fp32, little-endian); empty for other granularities.
  ///
  /// - Throws: `invalidArgument` when a per-tensor or per-column statistic is missing or belongs
  ///   to another tensor; what ``outputLayout(shape:)`` throws.
  public func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]] {
    let layout = try outputLayout(shape: shape)
    let amaxes: [Float]
    switch granularity {
    case .perTensor: amaxes = [try perTensorAmax(statistic, layout)]
    case .perColumn: amaxes = try columnStatistic(statistic, layout).values
    default: return [:]
    }
    var bytes = [UInt8]()
    bytes.reserveCapacity(4 * amaxes.count)
    for amax in amaxes {
      let bits = scale(amax: amax).bitPattern
      bytes.append(contentsOf: (0..<4).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) })
    }
    return [.scale: bytes]
  }

  /// `R_dt(e4m3fn(q) ⊗ scale)` for every element of `rows` (NaN for NaN codes; see
  /// ``QuantizationScheme/dequantize(rows:shape:parts:into:)``). Per-column scales are the whole
  /// `[E, 1, N]` part; a row takes its expert's.
  ///
  /// - Throws: `invalidArgument` for rows or buffers that do not match; what
  ///   ``outputLayout(shape:)`` throws.
  public func dequantize(
    rows: Range<Int>, shape: [Int], parts: [PartName: UnsafeRawBufferPointer],
    into output: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    let parts = try outputLayout(shape: shape).checkDequantizing(
      rows: rows, format: source, parts: parts, output: output)
    let (qdata, scales) = (parts[.qdata]!, parts[.scale]!)
    if granularity == .perColumn {
      let (rowsPerExpert, columns) = (shape[1], shape[2])
      for local in 0..<rows.count {
        let first = (rows.lowerBound + local) / rowsPerExpert * columns
        for column in 0..<columns {
          let index = local * columns + column
          let scale = PartBytes.float32(scales, first + column)
          source.storeDequantized(Float8E4M3Conversion.float(from: qdata[index]) * scale, at: index, in: output)
        }
      }
      return
    }
    let grid = try grid(shape)
    let (length, blocks) = (grid.blockLength, grid.blocksPerRow)
    for local in 0..<rows.count {
      for block in 0..<blocks {
        let scale = PartBytes.float32(scales, grid.perTensor ? 0 : local * blocks + block)
        let start = local * grid.rowLength + block * length
        source.storeDequantized(codes: qdata, range: start..<start + length, in: output) {
          Float8E4M3Conversion.float(from: $0) * scale
        }
      }
    }
  }
}
