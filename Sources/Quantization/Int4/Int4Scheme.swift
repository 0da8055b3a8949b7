/// torchao's `Int4Tensor` with plain packing (`Int4WeightOnlyConfig(int4_packing_format="plain")`,
/// quantized by mslk's `int4_row_quantize_zp` + `pack_int4`): asymmetric int4 groups along K with
/// a float zero point, two codes per byte.
///
/// Per group, in fp32: `lo, hi` = the group's min and max (zero not forced in),
/// `s = max(hi ⊖ lo, 1e-6) ⊘ 15`, `z = lo ⊕ s ⊗ 8`, `q = clamp(rint((x ⊖ lo) ⊘ s), 0, 15) − 8`.
/// qdata byte `j` of a row is `(q[2j+1] & 0xF) << 4 | (q[2j] & 0xF)` (even element in the low
/// nibble); the stored scale and zero point are `R_dt(s)` and `R_dt(z)`, transposed. This is the
/// CPU emulation of the fixtures: a CUDA run computes `⊘ 15` as `⊗ (1/15)` and may differ in rare
/// last bits. torchao has no `Int4Tensor.dequantize()`; ``dequantize(_:shape:)`` is the spec's
/// `R_dt(q ⊗ scale ⊕ zero)`.
///
/// 2-D `[N, K]` and 3-D `[E, N, K]` (each expert on its own). torchao leaves weights whose K is not
/// a multiple of the group size unquantized; this scheme throws `unsupportedShape` for them.
///
/// Parts, in torchao's order:
/// - `qdata`: `I8`, `[N, K/2]` (`[E, N, K/2]`).
/// - `scale`: the input format (`BF16`, `F16` or `F32`), `[K/g, N]` (`[E, K/g, N]`): transposed,
///   so it is ``PartPlacement/gathered``.
/// - `zero_point`: like `scale`.
public struct Int4Scheme: QuantizationScheme {
  /// The input format.
  public var source: FloatFormat
  /// Elements per group along K: 32, 64, 128 or 256.
  public var groupSize: Int

  /// Creates an Int4 scheme; torchao's default group size is 128.
  public init(source: FloatFormat, groupSize: Int = 128) {
    self.source = source
    self.groupSize = groupSize
  }

  /// The group sizes `Int4WeightOnlyConfig` accepts.
  public static let groupSizes: Set<Int> = [32, 64, 128, 256]
  /// 1e-6 as torch sees the Python float: the double rounded to fp32.
  private static let minimumRange = Float(1e-6 as Double)

  private func grid(_ shape: [Int]) throws(QuantizationError) -> BlockGrid {
    guard Self.groupSizes.contains(groupSize) else {
      throw QuantizationError(.invalidScheme, "Int4Tensor group size must be 32, 64, 128 or 256, not \(groupSize)")
    }
    do {
      return try BlockGrid(shape: shape, granularity: .perGroup(groupSize), ranks: 2...3, scheme: "Int4Tensor")
    } catch  where error.code == .unsupportedShape && shape.count >= 2 && shape.allSatisfy({ $0 > 0 }) {
      throw QuantizationError(
        .unsupportedShape,
        "Int4Tensor: K = \(shape[shape.count - 1]) of shape \(shape) is not a multiple of group size \(groupSize); "
          + "torchao leaves such weights unquantized")
    }
  }

  /// The parts of ``Int4Scheme`` for `shape` (see the type's documentation).
  ///
  /// - Throws: `unsupportedShape` for a rank other than 2 or 3, an empty dimension, or K not a
  ///   multiple of the group size; `invalidScheme` for a group size torchao does not offer.
  public func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout {
    let grid = try grid(shape)
    let scaleShape = Array(shape.dropLast(2)) + [grid.blocksPerRow, shape[shape.count - 2]]
    return QuantizedLayout(
      shape: shape,
      parts: [
        PartLayout(.qdata, .i8, Array(shape.dropLast()) + [grid.rowLength / 2], .rows(bytesPerRow: grid.rowLength / 2)),
        PartLayout(.scale, source.elementType, scaleShape, .gathered),
        PartLayout(.zeroPoint, source.elementType, scaleShape, .gathered),
      ])
  }

  /// Always `nil`: Int4 scales are per group.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic? {
    _ = try grid(shape)
    return nil
  }

  /// Quantizes input `rows` into `qdata` and writes their elements of the whole-part `scale` and
  /// `zero_point` buffers.
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
    let (length, groups, columns) = (grid.blockLength, grid.blocksPerRow, shape[shape.count - 2])
    let (scaleOutput, zeroPointOutput) = (out[.scale]!, out[.zeroPoint]!)
    let packed = out[.qdata]!.assumingMemoryBound(to: UInt8.self)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: grid.rowLength) { scratch in
      let row = scratch.baseAddress!
      for local in 0..<rows.count {
        let input = base + local * grid.rowLength * source.byteWidth
        RowKernels.load(input, count: grid.rowLength, format: source, into: row)
        let (expert, column) = (rows.lowerBound + local).quotientAndRemainder(dividingBy: columns)
        for group in 0..<groups {
          let values = row + group * length
          let (low, high) = RowKernels.extrema(
            input + group * length * source.byteWidth, count: length, format: source)
          let range = high - low
          let scale = (range < Self.minimumRange ? Self.minimumRange : range) / 15
          let index = (expert * groups + group) * columns + column
          source.store(scale, at: index, in: scaleOutput)
          source.store(low + scale * 8, at: index, in: zeroPointOutput)
          let start = (local * grid.rowLength + group * length) / 2
          Self.pack(
            values, count: length, low: low, scale: scale,
            into: UnsafeMutableBufferPointer(rebasing: packed[start..<start + length / 2]))
        }
      }
    }
  }

  /// Packs `clamp(rint((x ⊖ low) ⊘ scale), 0, 15) − 8` two per byte, even element low.
  private static func pack(
    _ values: UnsafePointer<Float>, count: Int, low: Float, scale: Float, into buffer: UnsafeMutableBufferPointer<UInt8>
  ) {
    guard let bytes = buffer.baseAddress else { return }
    for pair in 0..<count / 2 {
      let even = IntegerRounding.int32(IntegerRounding.clamp((values[2 &* pair] - low) / scale, 0, 15)) &- 8
      let odd = IntegerRounding.int32(IntegerRounding.clamp((values[2 &* pair &+ 1] - low) / scale, 0, 15)) &- 8
      bytes[pair] = UInt8(truncatingIfNeeded: (even & 0xF) | ((odd & 0xF) << 4))
    }
  }

  /// Always empty: Int4 has no per-tensor parts.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]] {
    _ = try grid(shape)
    return [:]
  }

  /// `R_dt(q ⊗ scale ⊕ zero)` for every element of `rows` (the spec's formula; torchao has no
  /// dequantize for Int4Tensor). The transposed scales and zero points are whole parts (see
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
    let (qdata, scales, zeros) = (parts[.qdata]!, parts[.scale]!.baseAddress!, parts[.zeroPoint]!.baseAddress!)
    let (length, groups, columns) = (grid.blockLength, grid.blocksPerRow, shape[shape.count - 2])
    for local in 0..<rows.count {
      let (expert, column) = (rows.lowerBound + local).quotientAndRemainder(dividingBy: columns)
      for group in 0..<groups {
        let at = (expert * groups + group) * columns + column
        let (scale, zero) = (source.value(at: at, in: scales), source.value(at: at, in: zeros))
        let start = local * grid.rowLength + group * length
        for index in start..<start + length {
          let byte = qdata[index / 2]
          let nibble = Int8(bitPattern: (index % 2 == 0 ? byte << 4 : byte & 0xF0)) >> 4
          source.storeDequantized(Float(nibble) * scale + zero, at: index, in: output)
        }
      }
    }
  }
}
