import Quantization
import Testing

/// NVFP4 and MX kernels, which read their input in its own format, against a scalar reference
/// that widens every value to `Float` first (the kernels' earlier path) on inputs the torchao
/// fixtures lack: NaN, infinities, signed zeros, subnormals and huge values, several blocks per
/// row, rows that leave a partial tile, and padded scale columns.
@Suite struct BlockKernelReferenceTests {
  /// Random values with specials planted every few elements.
  static func values(count: Int, seed: UInt64, specials: [Float]) -> [Float] {
    var values = Buffers.randomValues(count: count, seed: seed, scale: 4)
    for index in stride(from: Int(seed % 7), to: count, by: 37) {
      values[index] = specials.isEmpty ? values[index] : specials[index % specials.count]
    }
    // Blocks of one magnitude band each, from subnormal to huge, so that scales cover their range.
    for index in 0..<count {
      values[index] *= Float(sign: .plus, exponent: (index / 16 % 11) * 24 - 140, significand: 1)
    }
    return values
  }

  static let finiteSpecials: [Float] = [0, -0.0, 0x1p-130, -0x1p-133, 3e38, -3e38, 448, 6, -6]
  static let allSpecials: [Float] = finiteSpecials + [.infinity, -.infinity, .nan, -.nan]

  /// `value` clamped to `[low, high]`, NaN passed through.
  static func clamp(_ value: Float, _ low: Float, _ high: Float) -> Float {
    let raised = value < low ? low : value
    return raised > high ? high : raised
  }

  /// The largest magnitude of `values`, NaN when any is NaN.
  static func amax(_ values: ArraySlice<Float>) -> Float {
    values.contains { $0.isNaN } ? .nan : values.map(\.magnitude).max()!
  }

  /// Expects `actual == expected`, naming the first differing bytes when not.
  static func expectEqual(_ actual: [UInt8], _ expected: [UInt8], _ part: String) {
    let differing = actual.indices.filter { actual[$0] != expected[$0] }
    #expect(
      actual.count == expected.count && differing.isEmpty,
      "\(part): \(differing.count) bytes differ, first \(differing.prefix(4).map { ($0, actual[$0], expected[$0]) })")
  }

  /// The swizzled offset of scale `(row, column)` with `columns` scale columns.
  static func swizzled(row: Int, column: Int, columns: Int) -> Int {
    let padded = (columns + 3) / 4 * 4
    return (row / 128) * 128 * padded + (column / 4) * 512 + (row % 32) * 16 + (row % 128 / 32) * 4 + column % 4
  }

  @Test(arguments: [
    (FloatFormat.bf16, true, [Float]()), (.bf16, true, finiteSpecials + [.infinity]), (.bf16, true, allSpecials),
    (.bf16, false, allSpecials), (.fp32, true, finiteSpecials), (.fp32, false, allSpecials),
  ])
  func nvfp4MatchesTheWidenedReference(format: FloatFormat, perTensor: Bool, specials: [Float]) throws {
    let (rows, columns) = (144, 80)
    let scheme = NVFP4Scheme(source: format, usesPerTensorScale: perTensor)
    let planted = Self.values(count: rows * columns, seed: UInt64(specials.count), specials: specials)
    let input = Buffers.bytes(planted, as: format)
    let parts = try input.withUnsafeBytes { try scheme.quantize($0, shape: [rows, columns]) }
    let values = Buffers.floats(input, as: format)
    let pts: Float? = perTensor ? Buffers.floats(try #require(parts[.perTensorScale]), as: .fp32)[0] : nil
    var qdata = [UInt8](repeating: 0, count: rows * columns / 2)
    var signFree = qdata
    var scales = [UInt8](repeating: 0, count: 2 * 128 * 8)
    for row in 0..<rows {
      for block in 0..<columns / 16 {
        let start = row * columns + block * 16
        let blockScale = Self.amax(values[start..<start + 16]) / 6
        let scaled = pts.map { blockScale / $0 } ?? blockScale
        let byte = Float8E4M3Conversion.bits(from: scaled.isNaN ? -Float.nan : Self.clamp(scaled, 0x1p-6, 448))
        let decoded = Float8E4M3Conversion.float(from: byte)
        var multiplier = pts.map { (1 / $0) / decoded } ?? 1 / decoded
        multiplier = multiplier.isNaN ? -Float.nan : multiplier
        scales[Self.swizzled(row: row, column: block, columns: columns / 16)] = byte
        for index in start..<start + 16 {
          let code = Float4E2M1Conversion.bits(from: Self.clamp(values[index] * multiplier, -6, 6))
          qdata[index / 2] |= index % 2 == 0 ? code : code << 4
          // NaN ⊗ NaN is either operand's NaN, as the compiler orders them: its sign is not pinned.
          if values[index].isNaN && multiplier.isNaN { signFree[index / 2] |= index % 2 == 0 ? 0x08 : 0x80 }
        }
      }
    }
    Self.expectEqual(try #require(parts[.scale]), scales, "scale")
    let actual = zip(try #require(parts[.qdata]), signFree).map { $0 & ~$1 }
    Self.expectEqual(actual, zip(qdata, signFree).map { $0 & ~$1 }, "qdata")
  }

  /// MXScaling's byte for `amax`, written out from the rule.
  static func mxScaleByte(amax: Float, element: MXElement, scaling: MXScaling) -> UInt8 {
    let (largest, offset): (Float, Int) = element == .float8E4M3 ? (448, 8) : (6, 2)
    if amax.isNaN { return 255 }
    guard scaling == .rceil else {
      return UInt8(min(max(Int(amax.exponentBitPattern) - 127 - offset, -127), 128) + 127)
    }
    let quotient = amax / largest
    if quotient == .infinity { return 254 }
    if quotient == 0 { return 0 }
    var exponent = Int(quotient.exponent)
    if quotient != Float(sign: .plus, exponent: quotient.exponent, significand: 1) { exponent += 1 }
    return UInt8(min(max(exponent, -127), 127) + 127)
  }

  @Test(arguments: [
    (FloatFormat.bf16, MXElement.float8E4M3, MXScaling.rceil), (.bf16, .float4E2M1, .rceil),
    (.bf16, .float8E4M3, .floor), (.bf16, .float4E2M1, .floor), (.fp32, .float8E4M3, .floor),
    (.fp32, .float4E2M1, .floor),
  ])
  func mxMatchesTheWidenedReference(format: FloatFormat, element: MXElement, scaling: MXScaling) throws {
    let (rows, columns) = (130, 160)
    let scheme = MXScheme(source: format, element: element, scaling: scaling)
    let input = Buffers.bytes(Self.values(count: rows * columns, seed: 3, specials: Self.allSpecials), as: format)
    let parts = try input.withUnsafeBytes { try scheme.quantize($0, shape: [rows, columns]) }
    let values = Buffers.floats(input, as: format)
    let packed = element == .float4E2M1
    var qdata = [UInt8](repeating: 0, count: packed ? rows * columns / 2 : rows * columns)
    var scales = [UInt8](repeating: 0, count: 2 * 128 * 8)
    for row in 0..<rows {
      for block in 0..<columns / 32 {
        let start = row * columns + block * 32
        let byte = Self.mxScaleByte(amax: Self.amax(values[start..<start + 32]), element: element, scaling: scaling)
        scales[Self.swizzled(row: row, column: block, columns: columns / 32)] = byte
        let multiplier = byte == 0 ? 1 : Float(sign: .plus, exponent: 127 - Int(byte), significand: 1)
        let power = Float(bitPattern: UInt32(byte) << 23)
        let divisor = power < 0x1p-126 ? 0x1p-126 : power
        for index in start..<start + 32 {
          let scaled = scaling == .rceil ? values[index] * multiplier : values[index] / divisor
          if packed {
            let code = Float4E2M1Conversion.bits(from: scaling == .rceil ? Self.clamp(scaled, -6, 6) : scaled)
            qdata[index / 2] |= index % 2 == 0 ? code : code << 4
          } else {
            qdata[index] = Float8E4M3Conversion.bits(from: Self.clamp(scaled, -448, 448))
          }
        }
      }
    }
    Self.expectEqual(try #require(parts[.scale]), scales, "scale")
    Self.expectEqual(try #require(parts[.qdata]), qdata, "qdata")
  }
}
