/// torchao's `MXTensor` as `MXDynamicActivationMXWeightConfig` stores weights: blocks of 32
/// elements along K sharing one e8m0 power-of-two scale, scales always swizzled.
///
/// Per block, with `amax = max |x|`: the scale byte follows ``MXScaling``; elements are scaled,
/// clamped to ±P and encoded as e4m3fn (MXFP8) or e2m1 (MXFP4, packed, even element low).
///
/// Inputs: bf16 (what the config accepts), and fp32 with ``MXScaling/floor`` (`MXTensor.to_mx`).
/// fp32 with RCEIL is refused: torch's fp32 `log2f` rounds down just above powers of two, so its
/// scales are not the exact rule. fp16 is refused. K must be a multiple of 32; 3-D `[E, N, K]`
/// needs N % 128 == 0 (torchao swizzles the flattened `E·N` rows and fails otherwise).
///
/// Parts, in torchao's order:
/// - `qdata`: `F8_E4M3` `[.., N, K]` (MXFP8) or `U8` `[.., N, K/2]` (MXFP4).
/// - `scale`: `F8_E8M0`, swizzled `[.., ⌈N/128⌉·32, ⌈K/128⌉·16]` in 128-row tiles, so chunks hold
///   whole 128-row tiles (``QuantizedLayout/rowAlignment``); padding bytes are 0.
public struct MXScheme: QuantizationScheme {
  /// The elements per scale.
  public static let blockSize = 32
  /// The input format.
  public var source: FloatFormat
  /// MXFP8 or MXFP4.
  public var element: MXElement
  /// How scales are chosen; the config default is RCEIL.
  public var scaling: MXScaling

  /// Only with RCEIL, which gives an infinite block byte 254 (NaN 255); FLOOR gives infinity a
  /// finite-looking byte and clamps its values.
  public var scalesShowNonFiniteInput: Bool { scaling == .rceil }

  /// Creates an MX scheme.
  public init(source: FloatFormat, element: MXElement, scaling: MXScaling = .rceil) {
    self.source = source
    self.element = element
    self.scaling = scaling
  }

  private func tiles(_ shape: [Int]) throws(QuantizationError) -> SwizzledScales {
    guard source == .bf16 || (source == .fp32 && scaling == .floor) else {
      throw QuantizationError(
        .unsupportedFormat,
        "MXTensor quantizes bf16 weights (and fp32 with FLOOR scaling), not \(source.rawValue) with \(scaling.rawValue)"
      )
    }
    try BlockGrid.check(shape: shape, ranks: 2...3, scheme: "MXTensor")
    guard shape[shape.count - 1] % Self.blockSize == 0 else {
      throw QuantizationError(.unsupportedShape, "MXTensor: K of shape \(shape) is not a multiple of 32")
    }
    guard shape.count == 2 || shape[1] % SwizzledScales.rowsPerTile == 0 else {
      throw QuantizationError(
        .unsupportedShape, "MXTensor: a 3-D weight needs N % 128 == 0 for swizzled scales, shape \(shape)")
    }
    return SwizzledScales(columns: shape[shape.count - 1] / Self.blockSize)
  }

  /// The parts of ``MXScheme`` for `shape` (see the type's documentation).
  ///
  /// - Throws: `unsupportedFormat` for fp16 or fp32 with RCEIL; `unsupportedShape` for a rank
  ///   other than 2 or 3, an empty dimension, K % 32 ≠ 0, or a 3-D weight with N % 128 ≠ 0.
  public func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout {
    let tiles = try tiles(shape)
    let rowLength = shape[shape.count - 1]
    let qdata =
      element == .float8E4M3
      ? PartLayout(.qdata, .f8e4m3, shape, .rows(bytesPerRow: rowLength))
      : PartLayout(.qdata, .u8, Array(shape.dropLast()) + [rowLength / 2], .rows(bytesPerRow: rowLength / 2))
    return QuantizedLayout(
      shape: shape, rowAlignment: SwizzledScales.rowsPerTile,
      parts: [
        qdata,
        PartLayout(
          .scale, .f8e8m0, tiles.storedShape(for: shape),
          .tiles(rowsPerTile: SwizzledScales.rowsPerTile, bytesPerTile: tiles.bytesPerTile)),
      ])
  }

  /// Always `nil`: MX scales are per block.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic? {
    _ = try tiles(shape)
    return nil
  }

  /// Quantizes input `rows` (whole 128-row tiles, the last may be short) into `qdata` and their
  /// tiles of `scale`.
  ///
  /// - Throws: `invalidArgument` for misaligned rows or mismatched buffers; what
  ///   ``outputLayout(shape:)`` throws.
  public func quantize(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError) {
    let tiles = try tiles(shape)
    let layout = try outputLayout(shape: shape)
    let out = try layout.checkChunk(rows: rows, inputCount: input.count, format: source, outputs: outputs)
    outputs[.scale]!.initializeMemory(as: UInt8.self, repeating: 0)
    guard let base = input.baseAddress, !rows.isEmpty else { return }
    let rowLength = layout.rowLength
    let packedLength = element == .float8E4M3 ? rowLength : rowLength / 2
    let blockBytes = Self.blockSize * packedLength / rowLength
    let qdata = out[.qdata]!.assumingMemoryBound(to: UInt8.self).baseAddress!
    let scales = out[.scale]!.assumingMemoryBound(to: UInt8.self)
    let inputBlockBytes = Self.blockSize * source.byteWidth
    // Per row: per-block amax first, then scales and elements, so that the blocks' scalar chains
    // overlap.
    let amaxes = UnsafeMutablePointer<Float>.allocate(capacity: tiles.columns)
    let codes = UnsafeMutablePointer<Int32>.allocate(capacity: rowLength)
    defer {
      amaxes.deallocate()
      codes.deallocate()
    }
    for local in 0..<rows.count {
      let row = base + local * rowLength * source.byteWidth
      // The chunk starts on a tile, so its scale buffer starts at its first row's tile.
      let tile = (local / SwizzledScales.rowsPerTile) * tiles.bytesPerTile
      RowKernels.blockAbsMaxes(row, blocks: tiles.columns, blockSize: Self.blockSize, format: source, into: amaxes)
      for block in 0..<tiles.columns {
        let byte = scaling.scaleByte(amax: amaxes[block], element: element)
        scales[tile + tiles.offsetInTile(row: local, column: block)] = byte
        encode(
          row + block * inputBlockBytes, scaleByte: byte, codes: codes + block * Self.blockSize,
          into: qdata + local * packedLength + block * blockBytes)
      }
      if element == .float4E2M1 {
        ElementEncoding.pack(codes, count: rowLength, into: qdata + local * packedLength)
      }
    }
  }

  /// Scales and encodes one block of 32 values of ``source`` by the scaling rule: e4m3fn bytes
  /// into `output`, or e2m1 codes into `codes` (the caller packs a row of them).
  @inline(__always)
  private func encode(
    _ values: UnsafeRawPointer, scaleByte: UInt8, codes: UnsafeMutablePointer<Int32>,
    into output: UnsafeMutablePointer<UInt8>
  ) {
    let count = Self.blockSize
    switch scaling {
    case .rceil:
      // torchao multiplies by 2^(127 − byte), and by 1 when the byte is 0.
      let multiplier = scaleByte == 0 ? 1 : Float(sign: .plus, exponent: 127 - Int(scaleByte), significand: 1)
      if element == .float8E4M3 {
        ElementEncoding.float8(values, count: count, format: source, multiplier: multiplier, into: output)
      } else {
        ElementEncoding.float4(values, count: count, format: source, multiplier: multiplier, into: codes)
      }
    case .floor:
      let power = Float(bitPattern: UInt32(scaleByte) << 23)
      let divisor = power < 0x1p-126 ? 0x1p-126 : power
      if element == .float8E4M3 {
        ElementEncoding.float8(values, count: count, format: source, divisor: divisor, into: output)
      } else {
        ElementEncoding.float4(values, count: count, format: source, divisor: divisor, into: codes)
      }
    }
  }

  /// Always empty: MX has no per-tensor parts.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  public func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]] {
    _ = try tiles(shape)
    return [:]
  }

  /// `R_dt(element(q) ⊗ 2^(e − 127))` for every element of `rows`, the scales read from the
  /// tiles that hold the rows (see ``QuantizationScheme/dequantize(rows:shape:parts:into:)``).
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
    let rowLength = layout.rowLength
    let firstTileRow = rows.lowerBound / SwizzledScales.rowsPerTile * SwizzledScales.rowsPerTile
    for local in 0..<rows.count {
      let row = rows.lowerBound + local - firstTileRow
      for block in 0..<tiles.columns {
        let scale = Float8E8M0Conversion.float(from: scales[tiles.offset(row: row, column: block)])
        let start = local * rowLength + block * Self.blockSize
        for index in start..<start + Self.blockSize {
          let value =
            element == .float8E4M3
            ? Float8E4M3Conversion.float(from: qdata[index])
            : Float4E2M1Conversion.float(from: index % 2 == 0 ? qdata[index / 2] : qdata[index / 2] >> 4)
          source.storeDequantized(value * scale, at: index, in: output)
        }
      }
    }
  }
}
