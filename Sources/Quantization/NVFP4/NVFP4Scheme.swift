/// torchao's `NVFP4Tensor` (`NVFP4WeightOnlyConfig`, `NVFP4DynamicActivationNVFP4WeightConfig`):
/// e2m1 elements in blocks of 16 along K with swizzled e4m3fn block scales, optionally under an
/// fp32 per-tensor scale.
///
/// With `amax` = a block's largest magnitude and `bs = amax ⊘ 6`:
/// - without a per-tensor scale, `s8 = e4m3(clamp(bs, 2⁻⁶, 448))` and `r = 1 ⊘ s8`;
/// - with one, `pts = max|W| ⊘ 2688` (per expert for 3-D), `s8 = e4m3(clamp(bs ⊘ pts, 2⁻⁶, 448))`
///   and `r = (1 ⊘ pts) ⊘ s8`;
///
/// then each element is `e2m1(clamp(x ⊗ r, −6, 6))`, packed two per byte, even element low. An
/// all-zero block stores scale byte `0x08` (2⁻⁶). An all-zero tensor with a per-tensor scale has
/// `pts = 0`, so `0 ⊘ 0` makes every scale byte `0xFF` and every code `0x8` (x86's negative default
/// NaN; this case is inferred from torch's arithmetic, not checked against torchao).
///
/// Inputs bf16 or fp32; N and K multiples of 16; 2-D `[N, K]`, or 3-D `[E, N, K]` with
/// N % 128 == 0 (torchao swizzles the flattened rows). `NVFP4WeightOnlyConfig` itself only takes
/// 2-D weights; the dynamic config's 3-D per-expert scale is what this scheme does for 3-D.
///
/// Parts, in torchao's order:
/// - `per_tensor_scale` (only with ``usesPerTensorScale``): `F32`, shape `[]` (2-D) or `[E, 1, 1]`,
///   from ``tensorParts(shape:statistic:)``.
/// - `qdata`: `U8`, `[.., N, K/2]`.
/// - `scale`: `F8_E4M3`, swizzled `[.., ⌈N/128⌉·32, ⌈K/64⌉·16]` in 128-row tiles (chunks hold
///   whole tiles); padding bytes are 0.
public struct NVFP4Scheme: QuantizationScheme {
  /// The elements per block scale.
  public static let blockSize = 16
  /// The input format.
  public var source: FloatFormat
  /// Whether the tensor carries a per-tensor scale (torchao's `use_dynamic_per_tensor_scale`,
  /// default true).
  public var usesPerTensorScale: Bool

  /// Only with a per-tensor scale, which follows the tensor's largest magnitude: without one, an
  /// infinite block's scale clamps to 448 and its values to ±6.
  public var scalesShowNonFiniteInput: Bool { usesPerTensorScale }

  /// Creates an NVFP4 scheme.
  public init(source: FloatFormat, usesPerTensorScale: Bool = true) {
    self.source = source
    self.usesPerTensorScale = usesPerTensorScale
  }

  private func tiles(_ shape: [Int]) throws(QuantizationError) -> SwizzledScales {
    guard source != .fp16 else {
      throw QuantizationError(.unsupportedFormat, "NVFP4Tensor quantizes bf16 and fp32 weights, not F16")
    }
    try BlockGrid.check(shape: shape, ranks: 2...3, scheme: "NVFP4Tensor")
    guard shape[shape.count - 1] % 16 == 0, shape[shape.count - 2] % 16 == 0 else {
      throw QuantizationError(.unsupportedShape, "NVFP4Tensor: N and K of shape \(shape) must be multiples of 16")
    }
    guard shape.count == 2 || shape[1] % SwizzledScales.rowsPerTile == 0 else {
      throw QuantizationError(
        .unsupportedShape, "NVFP4Tensor: a 3-D weight needs N % 128 == 0 for swizzled scales, shape \(shape)")
    }
    return SwizzledScales(columns: shape[shape.count - 1] / Self.blockSize)
  }

  /// The parts of ``NVFP4Scheme`` for `shape` (see the type's documentation).
  ///
  /// - Throws: `unsupportedFormat` for fp16; `unsupportedShape` for a rank other than 2 or 3, an
  ///   empty dimension, N or K not a multiple of 16, or a 3-D weight with N % 128 ≠ 0.
  public func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout {
    let tiles = try tiles(shape)
    let rowLength = shape[shape.count - 1]
    var parts: [PartLayout] = []
    if usesPerTensorScale {
      parts.append(PartLayout(.perTensorScale, .f32, shape.count == 2 ? [] : [shape[0], 1, 1], .tensor))
    }
    parts.append(PartLayout(.qdata, .u8, Array(shape.dropLast()) + [rowLength / 2], .rows(bytesPerRow: rowLength / 2)))
    parts.append(
      PartLayout(
        .scale, .f8e4m3, tiles.storedShape(for: shape),
        .tiles(rowsPerTile: SwizzledScales.rowsPerTile, bytesPerTile: tiles.bytesPerTile)))
    return QuantizedLayout(shape: shape, rowAlignment: SwizzledScales.rowsPerTile, parts: parts)
  }

  /// The per-tensor (per-expert for 3-D) statistic when ``usesPerTensorScale``, else `nil`.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic? {
    _ = try tiles(shape)
    guard usesPerTensorScale else { return nil }
    let rowsPerGroup = shape[shape.count - 2]
    return AbsMaxStatistic(
      format: source, rowLength: shape[shape.count - 1], rowsPerGroup: rowsPerGroup,
      groupCount: shape.dropLast().reduce(1, *) / rowsPerGroup)
  }

  /// The per-tensor scales `amax ⊘ 2688` from a finished statistic.
  private func perTensorScales(_ statistic: AbsMaxStatistic?, shape: [Int]) throws(QuantizationError) -> [Float] {
    guard let statistic else {
      throw QuantizationError(.invalidArgument, "NVFP4Tensor per-tensor scales need the tensor's AbsMaxStatistic")
    }
    try statistic.check(try outputLayout(shape: shape), format: source, rowsPerGroup: shape[shape.count - 2])
    return statistic.values.map { $0 / 2688 }
  }

  /// Quantizes input `rows` (whole 128-row tiles, the last may be short) into `qdata` and their
  /// tiles of `scale`.
  ///
  /// - Throws: `invalidArgument` for misaligned rows, mismatched buffers, or a missing statistic
  ///   when ``usesPerTensorScale``; what ``outputLayout(shape:)`` throws.
  public func quantize(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) {
    let tiles = try tiles(shape)
    let layout = try outputLayout(shape: shape)
    let out = try layout.checkChunk(rows: rows, inputCount: input.count, format: source, outputs: outputs)
    let perTensorScales = usesPerTensorScale ? try perTensorScales(statistic, shape: shape) : []
    outputs[.scale]!.initializeMemory(as: UInt8.self, repeating: 0)
    guard let base = input.baseAddress, !rows.isEmpty else { return }
    let rowLength = layout.rowLength
    let qdata = out[.qdata]!.assumingMemoryBound(to: UInt8.self).baseAddress!
    let scales = out[.scale]!.assumingMemoryBound(to: UInt8.self)
    let blockBytes = Self.blockSize * source.byteWidth
    // Per row: per-block amax first, then the scales, then the elements, each a loop of
    // independent blocks.
    let amaxes = UnsafeMutablePointer<Float>.allocate(capacity: tiles.columns)
    let multipliers = UnsafeMutablePointer<Float>.allocate(capacity: tiles.columns)
    let scaleBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: tiles.columns)
    let codes = UnsafeMutablePointer<Int32>.allocate(capacity: rowLength)
    defer {
      amaxes.deallocate()
      multipliers.deallocate()
      scaleBytes.deallocate()
      codes.deallocate()
    }
    for local in 0..<rows.count {
      let row = base + local * rowLength * source.byteWidth
      let tile = (local / SwizzledScales.rowsPerTile) * tiles.bytesPerTile
      RowKernels.blockAbsMaxes(row, blocks: tiles.columns, blockSize: Self.blockSize, format: source, into: amaxes)
      // The per-tensor scale is the same for the whole row: one loop each way.
      if usesPerTensorScale {
        let perTensorScale = perTensorScales[(rows.lowerBound + local) / shape[shape.count - 2]]
        for block in 0..<tiles.columns {
          (scaleBytes[block], multipliers[block]) = Self.blockScale(amax: amaxes[block], perTensorScale: perTensorScale)
        }
      } else {
        for block in 0..<tiles.columns {
          (scaleBytes[block], multipliers[block]) = Self.blockScale(amax: amaxes[block], perTensorScale: nil)
        }
      }
      for block in 0..<tiles.columns {
        scales[tile + tiles.offsetInTile(row: local, column: block)] = scaleBytes[block]
      }
      for block in 0..<tiles.columns {
        ElementEncoding.float4(
          row + block * blockBytes, count: Self.blockSize, format: source, multiplier: multipliers[block],
          into: codes + block * Self.blockSize)
      }
      ElementEncoding.pack(codes, count: rowLength, into: qdata + local * rowLength / 2)
    }
  }

  /// A block's e4m3 scale byte and the multiplier its elements get (inlined, so that a loop over
  /// blocks with a fixed `perTensorScale` has no branch or call left).
  @inline(__always)
  private static func blockScale(amax: Float, perTensorScale: Float?) -> (UInt8, Float) {
    let blockScale = amax / 6
    let scaled = perTensorScale.map { blockScale / $0 } ?? blockScale
    // 0 ⊘ 0 on x86 gives the negative default NaN; spell it out so every machine agrees.
    let byte = Float8E4M3Conversion.bits(
      from: scaled.isNaN ? -Float.nan : IntegerRounding.clamp(scaled, 0x1p-6, 448))
    let decoded = Float8E4M3Conversion.float(from: byte)
    let multiplier = perTensorScale.map { (1 / $0) / decoded } ?? 1 / decoded
    return (byte, multiplier.isNaN ? -Float.nan : multiplier)
  }

  /// The `per_tensor_scale` part (fp32, little-endian) when ``usesPerTensorScale``, else empty.
  ///
  /// - Throws: `invalidArgument` when the statistic is missing or belongs to another tensor; what
  ///   ``outputLayout(shape:)`` throws.
  public func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]] {
    _ = try tiles(shape)
    guard usesPerTensorScale else { return [:] }
    let bytes = try perTensorScales(statistic, shape: shape).flatMap { scale in
      (0..<4).map { UInt8(truncatingIfNeeded: scale.bitPattern >> (8 * $0)) }
    }
    return [.perTensorScale: bytes]
  }

  /// `R_dt(e2m1(q) ⊗ (pts ⊗ s8))` for every element of `rows` (`s8` alone without a per-tensor
  /// scale), the block scales read from the tiles that hold the rows, the per-tensor scales whole
  /// (see ``QuantizationScheme/dequantize(rows:shape:parts:into:)``).
  ///
  /// - Throws: `invalidArgument` for rows or buffers that do not match; what
  ///   ``outputLayout(shape:)`` throws.
  public func dequantize(
    rows: Range<Int>, shape: [Int], parts: [PartName: UnsafeRawBufferPointer],
    into output: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError) {
    let tiles = try tiles(shape)
    let layout = try outputLayout(shape: shape)
    let parts = try layout.checkDequantizing(rows: rows, format: source, parts: parts, output: output)
    let (qdata, scales) = (parts[.qdata]!, parts[.scale]!)
    let (rowLength, rowsPerGroup) = (layout.rowLength, shape[shape.count - 2])
    let firstTileRow = rows.lowerBound / SwizzledScales.rowsPerTile * SwizzledScales.rowsPerTile
    for local in 0..<rows.count {
      let perTensorScale = parts[.perTensorScale].map {
        PartBytes.float32($0, (rows.lowerBound + local) / rowsPerGroup)
      }
      for block in 0..<tiles.columns {
        var scale = Float8E4M3Conversion.float(
          from: scales[tiles.offset(row: rows.lowerBound + local - firstTileRow, column: block)])
        if let perTensorScale { scale = perTensorScale * scale }
        let start = local * rowLength + block * Self.blockSize
        for index in start..<start + Self.blockSize {
          let code = index % 2 == 0 ? qdata[index / 2] : qdata[index / 2] >> 4
          source.storeDequantized(Float4E2M1Conversion.float(from: code) * scale, at: index, in: output)
        }
      }
    }
  }
}
