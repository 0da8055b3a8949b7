/// What a quantized tensor's scales show about values that dequantize to NaN or infinity, found
/// cheaply after quantizing: scales hold one value per row or block, so reading them costs a
/// small fraction of the quantization itself.
///
/// A scale that is NaN or infinite means the input held a NaN or an infinity in that row or
/// block (every scheme's scale follows its block's largest magnitude, which NaN and infinity
/// reach). A scale of 0 means every zero of the block quantizes to `0/0` = NaN: float8 divides by
/// `amax/448` with no lower bound, so an all-zero row (or one whose largest magnitude underflows)
/// does, and NVFP4's all-zero tensor has a per-tensor scale of 0. torchao stores the same values;
/// these findings only say where. int8, intx and int4 scales never reach 0 (they are clamped to an
/// eps), and e4m3/e8m0 block scales are not read for 0, as their swizzle padding is 0.
public struct ScaleFindings: Sendable, Hashable {
  /// Rows (or blocks, where the scale layout hides the rows) with a finding.
  public struct Rows: Sendable, Hashable {
    /// How many rows (or blocks).
    public var count = 0
    /// The first row, when rows are known.
    public var first: Int?
    /// Whether ``count`` counts blocks because the rows are not known (swizzled or transposed
    /// scales).
    public var countsBlocks = false

    mutating func add(row: Int?, count: Int = 1) {
      self.count += count
      if let row {
        first = min(first ?? row, row)
      } else {
        countsBlocks = true
      }
    }

    mutating func merge(_ other: Rows) {
      count += other.count
      if let row = other.first { first = min(first ?? row, row) }
      countsBlocks = countsBlocks || other.countsBlocks
    }
  }

  /// Rows whose scale is NaN or infinite: the input holds a NaN or an infinity there.
  public private(set) var nonFinite = Rows()
  /// Rows with a scale of 0: their zeros quantize to NaN.
  public private(set) var zero = Rows()
  /// Whether a per-tensor (or per-expert) scale is NaN or infinite.
  public private(set) var nonFiniteTensorScale = false
  /// Whether a per-tensor (or per-expert) scale is 0: the tensor (or an expert) is all zeros.
  public private(set) var zeroTensorScale = false

  /// No findings yet.
  public init() {}

  /// Whether nothing was found.
  public var isEmpty: Bool { self == ScaleFindings() }

  /// Adds the findings of another chunk of the same tensor.
  public mutating func merge(_ other: ScaleFindings) {
    nonFinite.merge(other.nonFinite)
    zero.merge(other.zero)
    nonFiniteTensorScale = nonFiniteTensorScale || other.nonFiniteTensorScale
    zeroTensorScale = zeroTensorScale || other.zeroTensorScale
  }

  /// Reads the scale parts that a chunk of input `rows` wrote into `outputs` (the buffers given
  /// to ``QuantizationScheme/quantize(_:shape:rows:statistic:into:)``). Gathered and per-tensor
  /// parts are left to ``scan(part:bytes:)``, which reads them once, whole.
  public mutating func scan(
    _ outputs: [PartName: UnsafeMutableRawBufferPointer], layout: QuantizedLayout, rows: Range<Int>
  ) {
    for part in layout.parts where part.name == .scale {
      guard let buffer = outputs[part.name] else { continue }
      switch part.placement {
      case .rows(let bytesPerRow) where bytesPerRow > 0:
        for (offset, row) in zip(stride(from: 0, to: buffer.count, by: bytesPerRow), rows) {
          let found = Self.read(
            UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + bytesPerRow]), part.elementType)
          if found.nonFinite > 0 { nonFinite.add(row: row) }
          if found.zero > 0 { zero.add(row: row) }
        }
      case .tiles:
        let found = Self.read(UnsafeRawBufferPointer(buffer), part.elementType)
        if found.nonFinite > 0 { nonFinite.add(row: nil, count: found.nonFinite) }
      default:
        continue
      }
    }
  }

  /// Reads a whole scale part: a gathered one (rows unknown), a per-tensor (or per-expert) one,
  /// or Float8's per-column one (a `.tensor` scale of several elements, each the scale of one
  /// column of one expert: counted as blocks, like a gathered one). Other parts are ignored.
  public mutating func scan(part: PartLayout, bytes: UnsafeRawBufferPointer) {
    guard part.name == .scale || part.name == .perTensorScale else { return }
    let found = Self.read(bytes, part.elementType)
    let perTensor = part.name == .perTensorScale || part.byteCount == part.elementType.byteWidth
    if part.placement == .tensor && perTensor {
      nonFiniteTensorScale = nonFiniteTensorScale || found.nonFinite > 0
      zeroTensorScale = zeroTensorScale || found.zero > 0
    } else {
      if found.nonFinite > 0 { nonFinite.add(row: nil, count: found.nonFinite) }
      if found.zero > 0 { zero.add(row: nil, count: found.zero) }
    }
  }

  /// Reads a chunk of input `rows` (`input` holds them whole, in `format`) for NaN and infinity:
  /// what a scheme whose scales do not show them (``QuantizationScheme/scalesShowNonFiniteInput``)
  /// is given.
  public mutating func scan(input: UnsafeRawBufferPointer, format: FloatFormat, rows: Range<Int>) {
    guard !rows.isEmpty else { return }
    let rowBytes = input.count / rows.count
    for (offset, row) in zip(stride(from: 0, to: input.count, by: rowBytes), rows) {
      if Self.nonFiniteCount(UnsafeRawBufferPointer(rebasing: input[offset..<offset + rowBytes]), format) > 0 {
        nonFinite.add(row: row)
      }
    }
  }

  /// How many elements of `bytes`, in `format`, are NaN or infinite.
  ///
  /// Every byte of a copied tensor passes through here, so the count runs in blocks small enough
  /// for counters of the element's own width: the loops then vectorise at full width (8 bf16 lanes
  /// to a 128-bit register) instead of widening every comparison to a 64-bit count.
  public static func nonFiniteCount(_ bytes: UnsafeRawBufferPointer, _ format: FloatFormat) -> Int {
    guard let base = bytes.baseAddress else { return 0 }
    let count = bytes.count / format.byteWidth
    var total = 0
    for start in stride(from: 0, to: count, by: Int(Int16.max)) {
      let elements = start..<min(start + Int(Int16.max), count)
      switch format {
      case .bf16, .fp16:
        let infinity: Int16 = format == .bf16 ? 0x7F80 : 0x7C00
        var found: Int16 = 0
        for index in elements {
          let bits = Int16(
            bitPattern: base.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self).littleEndian & 0x7FFF)
          // 1 when `bits` ≥ `infinity`, from the sign of the difference: a `? 1 : 0` stays scalar.
          found &+= ((bits &- infinity) >> 15) &+ 1
        }
        total += Int(found)
      case .fp32:
        var found: Int32 = 0
        for index in elements {
          let bits = Int32(
            bitPattern: base.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self).littleEndian & 0x7FFF_FFFF)
          found &+= ((bits &- 0x7F80_0000) >> 31) &+ 1
        }
        total += Int(found)
      }
    }
    return total
  }

  /// How many elements of `bytes` are NaN or infinite, and how many are ±0 (only for the
  /// formats that can hold a 0 scale: f32, bf16, f16).
  private static func read(_ bytes: UnsafeRawBufferPointer, _ type: ElementType) -> (nonFinite: Int, zero: Int) {
    var nonFinite = 0
    var zero = 0
    switch type {
    case .f32:
      for index in 0..<bytes.count / 4 {
        let bits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)) & 0x7FFF_FFFF
        nonFinite += bits >= 0x7F80_0000 ? 1 : 0
        zero += bits == 0 ? 1 : 0
      }
    case .bf16, .f16:
      let infinity: UInt16 = type == .bf16 ? 0x7F80 : 0x7C00
      for index in 0..<bytes.count / 2 {
        let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)) & 0x7FFF
        nonFinite += bits >= infinity ? 1 : 0
        zero += bits == 0 ? 1 : 0
      }
    case .f8e4m3:
      for byte in bytes where byte & 0x7F == 0x7F { nonFinite += 1 }
    case .f8e8m0:
      // 255 is NaN; RCEIL gives 254 to an infinite block, a byte no finite bf16 block reaches
      // (it needs amax > 2¹²⁶·P); FLOOR's bytes stop below it.
      for byte in bytes where byte >= 0xFE { nonFinite += 1 }
    case .i8, .u8:
      break
    }
    return (nonFinite, zero)
  }
}
