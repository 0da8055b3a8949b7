/// The loops every scheme shares: widening a row of input to `Float` and block statistics. Each is
/// a plain loop with no calls left after inlining, so that it vectorises.
enum RowKernels {
  /// Widens `count` elements of `format` at `source` (little-endian, any alignment) to `Float`
  /// (exact).
  static func load(
    _ source: UnsafeRawPointer, count: Int, format: FloatFormat, into target: UnsafeMutablePointer<Float>
  ) {
    switch format {
    case .bf16:
      for index in 0..<count {
        let bits = source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self)
        target[index] = Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16)
      }
    case .fp16:
      for index in 0..<count {
        let bits = source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self)
        target[index] = Float16Conversion.float(from: UInt16(littleEndian: bits))
      }
    case .fp32:
      for index in 0..<count {
        let bits = source.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self)
        target[index] = Float(bitPattern: UInt32(littleEndian: bits))
      }
    }
  }

  /// Calls `body(i, xᵢ)` for each of `count` elements of `format` at `source` (little-endian, any
  /// alignment), widened to `Float` (exact): a kernel that reads its input once, with no row of
  /// `Float`s in between. `body` must be a plain expression of the element and its index, so that
  /// the loop, once `body` is inlined, vectorises.
  @inline(__always)
  static func forEachValue(
    _ source: UnsafeRawPointer, count: Int, format: FloatFormat, _ body: (_ index: Int, _ value: Float) -> Void
  ) {
    switch format {
    case .bf16:
      for index in 0..<count {
        let bits = source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self)
        body(index, Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16))
      }
    case .fp16:
      for index in 0..<count {
        let bits = source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self)
        body(index, Float16Conversion.float(from: UInt16(littleEndian: bits)))
      }
    case .fp32:
      for index in 0..<count {
        let bits = source.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self)
        body(index, Float(bitPattern: UInt32(littleEndian: bits)))
      }
    }
  }

  /// The largest magnitude among `count` elements of `format` at `source`, widened (NaN when any
  /// is NaN), computed on the format's own bits.
  static func absMax(_ source: UnsafeRawPointer, count: Int, format: FloatFormat) -> Float {
    Float(bitPattern: magnitudeBits(source, count: count, format: format))
  }

  /// The fp32 bit pattern of the largest magnitude among `count` elements of `format` at
  /// `source`, computed on the bit patterns (NaN compares above infinity). bf16 and fp16
  /// magnitudes order like their bits, so the maximum is taken before widening.
  static func magnitudeBits(_ source: UnsafeRawPointer, count: Int, format: FloatFormat) -> UInt32 {
    switch format {
    case .bf16, .fp16:
      var largest: Int16 = 0
      for index in 0..<count {
        let bits = Int16(
          bitPattern: source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self).littleEndian & 0x7FFF)
        largest = bits > largest ? bits : largest
      }
      return widenedMagnitudeBits(Int32(largest), format: format)
    case .fp32:
      var largest: Int32 = 0
      for index in 0..<count {
        let bits = Int32(
          bitPattern: source.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self).littleEndian & 0x7FFF_FFFF)
        largest = bits > largest ? bits : largest
      }
      return UInt32(bitPattern: largest)
    }
  }

  /// ``absMax(_:count:format:)`` of a block of `count` elements, a multiple of 16, on SIMD lanes:
  /// sixteen at a time, then across the lanes, so that short blocks (NVFP4's 16, MX's 32) do not
  /// become a scalar chain once their constant length unrolls the loop.
  @inline(__always)
  static func blockAbsMax(_ source: UnsafeRawPointer, count: Int, format: FloatFormat) -> Float {
    switch format {
    case .bf16, .fp16:
      var largest = SIMD16<Int16>()
      for chunk in 0..<count / 16 {
        var bits = source.loadUnaligned(fromByteOffset: 32 &* chunk, as: SIMD16<UInt16>.self)
        #if _endian(big)
          bits = bits &<< 8 | bits &>> 8
        #endif
        largest = pointwiseMax(largest, unsafeBitCast(bits & 0x7FFF, to: SIMD16<Int16>.self))
      }
      return Float(bitPattern: widenedMagnitudeBits(Int32(largest.max()), format: format))
    case .fp32:
      var largest = SIMD16<Int32>()
      for chunk in 0..<count / 16 {
        var bits = source.loadUnaligned(fromByteOffset: 64 &* chunk, as: SIMD16<UInt32>.self)
        #if _endian(big)
          bits = bits &<< 24 | (bits &<< 8 & 0xFF_0000) | (bits &>> 8 & 0xFF00) | bits &>> 24
        #endif
        largest = pointwiseMax(largest, unsafeBitCast(bits & 0x7FFF_FFFF, to: SIMD16<Int32>.self))
      }
      return Float(bitPattern: widenedMagnitudeBits(largest.max(), format: format))
    }
  }

  /// ``blockAbsMax(_:count:format:)`` of each of the `blocks` blocks of `blockSize` elements that
  /// follow one another from `row`, into `amaxes`.
  @inline(__always)
  static func blockAbsMaxes(
    _ row: UnsafeRawPointer, blocks: Int, blockSize: Int, format: FloatFormat, into amaxes: UnsafeMutablePointer<Float>
  ) {
    let blockBytes = blockSize * format.byteWidth
    for block in 0..<blocks {
      amaxes[block] = blockAbsMax(row + block * blockBytes, count: blockSize, format: format)
    }
  }

  /// Raises `maxima[i]` to the magnitude of element `i` of the `count` elements of `format` at
  /// `source`, for each `i`: an element-wise maximum on the format's own magnitude bits (sign
  /// cleared; NaN orders above infinity). ``widenedMagnitudeBits(_:format:)`` turns a result into
  /// fp32 bits.
  static func raiseMagnitudes(
    _ source: UnsafeRawPointer, count: Int, format: FloatFormat, into maxima: UnsafeMutablePointer<Int32>
  ) {
    switch format {
    case .bf16, .fp16:
      for index in 0..<count {
        let bits = Int32(source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self).littleEndian & 0x7FFF)
        maxima[index] = bits > maxima[index] ? bits : maxima[index]
      }
    case .fp32:
      for index in 0..<count {
        let bits = Int32(
          bitPattern: source.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self).littleEndian & 0x7FFF_FFFF)
        maxima[index] = bits > maxima[index] ? bits : maxima[index]
      }
    }
  }

  /// The fp32 bit pattern of a magnitude given as `format`'s own bits (sign cleared), with every
  /// NaN as `0x7FC0_0000`.
  static func widenedMagnitudeBits(_ magnitude: Int32, format: FloatFormat) -> UInt32 {
    let widened: Float =
      switch format {
      case .bf16, .fp16: widened(UInt16(truncatingIfNeeded: magnitude), format: format)
      case .fp32: Float(bitPattern: UInt32(bitPattern: magnitude))
      }
    return widened.isNaN ? 0x7FC0_0000 : widened.bitPattern
  }

  /// The value of `bits`, an element of the 16-bit `format` (bf16 or fp16), as a `Float` (exact).
  @inline(__always)
  static func widened(_ bits: UInt16, format: FloatFormat) -> Float {
    format == .bf16 ? BFloat16Conversion.float(from: bits) : Float16Conversion.float(from: bits)
  }

  /// The smallest and largest of `count` (at least 1) elements of `format` at `source`
  /// (little-endian, any alignment), widened (exact), found on integer keys that order like the
  /// values (a negative value's magnitude bits flipped; the flip is its own inverse), because float
  /// min/max reductions do not vectorise: sixteen 16-bit keys at a time on SIMD lanes. −0 orders
  /// just below +0; a NaN with the sign bit set orders below −∞, one without it above +∞, so when
  /// any value is NaN the minimum or the maximum is NaN, as `torch.amin`/`torch.amax` propagate it.
  static func extrema(_ source: UnsafeRawPointer, count: Int, format: FloatFormat) -> (min: Float, max: Float) {
    switch format {
    case .bf16, .fp16:
      func key(_ bits: Int16) -> Int16 { bits ^ ((bits &>> 15) & 0x7FFF) }
      // The minimum is found as the maximum of the keys' complements (`~` reverses the order).
      var complementMaxima = LaneMaxima()
      var maxima = LaneMaxima()
      for chunk in 0..<count / 16 {
        var bits = source.loadUnaligned(fromByteOffset: 32 &* chunk, as: SIMD16<UInt16>.self)
        #if _endian(big)
          bits = bits &<< 8 | bits &>> 8
        #endif
        let signed = unsafeBitCast(bits, to: SIMD16<Int16>.self)
        let keys = signed ^ ((signed &>> 15) & 0x7FFF)
        complementMaxima.raise(~keys)
        maxima.raise(keys)
      }
      var (low, high) = (~complementMaxima.largest, maxima.largest)
      for index in count / 16 * 16..<count {
        let bits = key(
          Int16(bitPattern: source.loadUnaligned(fromByteOffset: 2 &* index, as: UInt16.self).littleEndian))
        low = bits < low ? bits : low
        high = bits > high ? bits : high
      }
      return (
        widened(UInt16(bitPattern: key(low)), format: format), widened(UInt16(bitPattern: key(high)), format: format)
      )
    case .fp32:
      func key(_ bits: Int32) -> Int32 { bits ^ ((bits >> 31) & 0x7FFF_FFFF) }
      var smallest = Int32.max
      var largest = Int32.min
      for index in 0..<count {
        let bits = key(
          Int32(bitPattern: source.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self).littleEndian))
        smallest = bits < smallest ? bits : smallest
        largest = bits > largest ? bits : largest
      }
      return (Float(bitPattern: UInt32(bitPattern: key(smallest))), Float(bitPattern: UInt32(bitPattern: key(largest))))
    }
  }

  /// The lane-wise maxima of sixteen-lane `Int16` vectors, kept as two eight-lane halves, for
  /// ``extrema(_:count:format:)``. The standard library's `pointwiseMax` on `SIMD16` and its
  /// `max()` across lanes stay out-of-line calls that loop over the lanes; on eight lanes and fewer
  /// they inline to single instructions, and the halving reduction becomes a few shuffles
  /// (`phminposuw` where there is one): intx groups of 32 and Int4's of 128 ran 5 % and 30 %
  /// faster (quant-bench). ``blockAbsMax(_:count:format:)`` keeps `SIMD16`: its constant 16 and 32
  /// lanes ran slower this way (MXFP8 9.8 → 7.7 GB/s).
  struct LaneMaxima {
    var low = SIMD8<Int16>(repeating: .min)
    var high = SIMD8<Int16>(repeating: .min)

    /// Raises each lane to the matching lane of `vector`.
    @inline(__always)
    mutating func raise(_ vector: SIMD16<Int16>) {
      (low, high) = (pointwiseMax(low, vector.lowHalf), pointwiseMax(high, vector.highHalf))
    }

    /// The largest lane.
    @inline(__always)
    var largest: Int16 {
      let eight = pointwiseMax(low, high)
      let four = pointwiseMax(eight.lowHalf, eight.highHalf)
      let two = pointwiseMax(four.lowHalf, four.highHalf)
      return Swift.max(two[0], two[1])
    }
  }
}
