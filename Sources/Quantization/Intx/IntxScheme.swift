/// torchao's `IntxUnpackedToInt8Tensor` (`IntxWeightOnlyConfig`,
/// `Int8DynamicActivationIntxWeightConfig`): int1…int8 codes stored one per `int8` byte, with
/// scales in the input format.
///
/// Codes lie in `[−2^(b−1), 2^(b−1) − 1]`. Scales follow ``IntxMapping`` with eps = the smallest
/// normal of the input format (2⁻¹⁴ for fp16). qdata is computed as torch does:
/// `r = R_sdt(1 ⊘ scale)`, `v = R_pdt(x ⊗ r)`, `q = clamp(R_pdt(rint(v) + zp), qmin, qmax)`,
/// where `sdt` is the stored scale format and `pdt` is the input format when they agree, else
/// fp32; for bf16 and fp16 the product is rounded before `rint` (a double rounding that torchao
/// really does). With a ``scaleFormat`` different from the input the scale is computed in the
/// input format, cast, and qdata recomputed with the cast scale.
///
/// 2-D `[N, K]` weights only (torchao raises for 3-D). Granularity ``Granularity/perRow`` is
/// torchao's `PerAxis(0)`.
///
/// Parts, in torchao's order:
/// - `qdata`: `I8`, `[N, K]`.
/// - `scale`: the scale format (`BF16`, `F16` or `F32`), `[N, K/g]` or `[N, 1]`.
/// - `zero_point`: `I8`, the scale's shape (0 for the symmetric mappings).
public struct IntxScheme: QuantizationScheme {
  /// The input format.
  public var source: FloatFormat
  /// The code width in bits, 1…8 (torchao's `int1` … `int8`).
  public var bits: Int
  /// How scales and zero points are chosen.
  public var mapping: IntxMapping
  /// ``Granularity/perRow`` (`PerAxis(0)`) or ``Granularity/perGroup(_:)``.
  public var granularity: Granularity
  /// The stored scale format (torchao's `scale_dtype`), or `nil` for the input format.
  public var scaleFormat: FloatFormat?

  /// Creates an intx scheme.
  public init(
    source: FloatFormat, bits: Int, mapping: IntxMapping = .symmetric, granularity: Granularity,
    scaleFormat: FloatFormat? = nil
  ) {
    self.source = source
    self.bits = bits
    self.mapping = mapping
    self.granularity = granularity
    self.scaleFormat = scaleFormat
  }

  private var storedScaleFormat: FloatFormat { scaleFormat ?? source }
  private var qmin: Float { -Float(1 << (bits - 1)) }
  private var qmax: Float { Float((1 << (bits - 1)) - 1) }

  private func grid(_ shape: [Int]) throws(QuantizationError) -> BlockGrid {
    guard (1...8).contains(bits) else {
      throw QuantizationError(.invalidScheme, "IntxUnpackedToInt8Tensor stores int1…int8, not int\(bits)")
    }
    guard granularity != .perTensor else {
      throw QuantizationError(.invalidScheme, "IntxUnpackedToInt8Tensor takes PerAxis(0) or PerGroup, not PerTensor")
    }
    return try BlockGrid(shape: shape, granularity: granularity, ranks: 2...2, scheme: "IntxUnpackedToInt8Tensor")
  }

  /// The parts of ``IntxScheme`` for `shape` (see the type's documentation).
  ///
  /// - Throws: `unsupportedShape` for a shape that is not 2-D, an empty dimension, or K not a
  ///   multiple of the group size; `invalidScheme` for a width outside 1…8, per-tensor
  ///   granularity or a group size below 1.
  public func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout {
    let grid = try grid(shape)
    let scaleType = storedScaleFormat.elementType
    return QuantizedLayout(
      shape: shape,
      parts: [
        PartLayout(.qdata, .i8, shape, .rows(bytesPerRow: grid.rowLength)),
        PartLayout(.scale, scaleType, grid.scaleShape, grid.scalePlacement(scaleType)),
        PartLayout(.zeroPoint, .i8, grid.scaleShape, grid.scalePlacement(.i8)),
      ])
  }

  /// Always `nil`: intx scales are per row or per group.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic? {
    _ = try grid(shape)
    return nil
  }

  /// Quantizes input `rows` into `qdata`, `scale` and `zero_point`.
  ///
  /// - Throws: `invalidArgument` for mismatched rows or buffers; what ``outputLayout(shape:)``
  ///   throws.
  public func quantize(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) {
    let grid = try grid(shape)
    let out = try outputLayout(shape: shape).checkChunk(
      rows: rows, inputCount: input.count, format: source, outputs: outputs)
    guard let base = input.baseAddress, !rows.isEmpty else { return }
    let scaleFormat = storedScaleFormat
    let productFormat = scaleFormat == source ? source : .fp32
    let (qmin, qmax, length, blocks) = (qmin, qmax, grid.blockLength, grid.blocksPerRow)
    let (scaleOutput, zeroPointOutput) = (out[.scale]!, out[.zeroPoint]!)
    let qdata = out[.qdata]!.assumingMemoryBound(to: Int8.self)
    // Per row: each block's extrema, then every block's parameters in one loop, then the codes.
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * blocks) { scratch in
      let minima = scratch.baseAddress!
      let (maxima, scales, zeroPoints) = (minima + blocks, minima + 2 * blocks, minima + 3 * blocks)
      for local in 0..<rows.count {
        let row = base + local * grid.rowLength * source.byteWidth
        for block in 0..<blocks {
          (minima[block], maxima[block]) = RowKernels.extrema(
            row + block * length * source.byteWidth, count: length, format: source)
        }
        IntxBlockParameters.compute(
          minima: minima, maxima: maxima, count: blocks, qmin: qmin, qmax: qmax, mapping: mapping, format: source,
          scales: scales, zeroPoints: zeroPoints)
        for block in 0..<blocks {
          let start = local * grid.rowLength + block * length
          let index = local * blocks + block
          let codes = UnsafeMutableBufferPointer(rebasing: qdata[start..<start + length])
          guard !scales[block].isNaN else {
            storeNaNScale(at: index, in: scaleOutput)
            zeroPointOutput.storeBytes(of: 0, toByteOffset: index, as: Int8.self)
            codes.initialize(repeating: 0)
            continue
          }
          let scale = scaleFormat.round(scales[block])
          scaleFormat.store(scale, at: index, in: scaleOutput)
          zeroPointOutput.storeBytes(
            of: Int8(truncatingIfNeeded: IntegerRounding.int32(zeroPoints[block])), toByteOffset: index, as: Int8.self)
          IntxCodes.quantize(
            row + block * length * source.byteWidth, count: length, source: source,
            reciprocal: scaleFormat.round(1 / scale), zeroPoint: zeroPoints[block], qmin: qmin, qmax: qmax,
            product: productFormat, into: codes)
        }
      }
    }
  }

  /// Stores the scale of a block that holds a NaN as torchao does on CPU: ATen's vectorised
  /// `maximum` ORs the unordered mask into its result and its bf16 narrowing writes `0xFFFF` for
  /// every NaN, so the scale is the NaN with every bit set in the input format (bf16 `0xFFFF`, as
  /// the adversarial run observed; fp16 `0xFFFF`; fp32 `0xFFFFFFFF`), then cast to the stored
  /// scale format. Every code of the block is then 0, torch's cast of NaN to int8 on x86.
  private func storeNaNScale(at index: Int, in bytes: UnsafeMutableRawBufferPointer) {
    let widened: UInt32 =
      switch source {
      case .bf16: 0xFFFF_0000
      case .fp16: 0xFFFF_E000
      case .fp32: 0xFFFF_FFFF
      }
    switch storedScaleFormat {
    case .bf16:
      bytes.storeBytes(of: UInt16(widened >> 16).littleEndian, toByteOffset: 2 * index, as: UInt16.self)
    case .fp16:
      let bits = UInt16(truncatingIfNeeded: 0xFE00 | (widened >> 13) & 0x3FF)
      bytes.storeBytes(of: bits.littleEndian, toByteOffset: 2 * index, as: UInt16.self)
    case .fp32:
      bytes.storeBytes(of: widened.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
    }
  }

  /// Always empty: intx has no per-tensor parts.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]] {
    _ = try grid(shape)
    return [:]
  }

  /// `R_dt(R_pout(R_dt(q − zp) ⊗ scale))` for every element of `rows`, `pout` = the input format
  /// when the scale format agrees, else fp32 (see
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
    let (qdata, scales, zeroPoints) = (parts[.qdata]!, parts[.scale]!, parts[.zeroPoint]!)
    let scaleFormat = storedScaleFormat
    let productFormat = scaleFormat == source ? source : .fp32
    let (length, blocks) = (grid.blockLength, grid.blocksPerRow)
    for local in 0..<rows.count {
      for block in 0..<blocks {
        let index = local * blocks + block
        let scale = scaleFormat.value(at: index, in: scales.baseAddress!)
        let zeroPoint = Float(Int8(bitPattern: zeroPoints[index]))
        let start = local * grid.rowLength + block * length
        source.storeDequantized(codes: qdata, range: start..<start + length, in: output) { [source] code in
          productFormat.round(source.round(Float(Int8(bitPattern: code)) - zeroPoint) * scale)
        }
      }
    }
  }
}
