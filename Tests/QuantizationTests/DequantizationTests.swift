import Quantization
import Testing

/// `dequantize` gives the spec's formula values, computed here independently from torchao's own
/// parts.
@Suite struct DequantizationTests {
  @Test(arguments: TorchAOFixture.names)
  func dequantizingTheQuantizedFixtureGivesTheSpecFormulaOfTorchAOsParts(fixture name: String) throws {
    let fixture = try TorchAOFixture(name)
    for tensor in fixture.quantizedTensors {
      let (shape, input) = try fixture.input(tensor)
      let scheme = try #require(try fixture.scheme(for: tensor, shape: shape))
      let quantized = try input.withUnsafeBytes { try scheme.quantize($0, shape: shape) }
      let expected = try fixture.expectedParts(tensor).mapValues(\.bytes)
      let reference = try Self.formula(scheme, expected, shape: shape)
      let actual = try scheme.dequantize(quantized, shape: shape)
      #expect(actual.count == reference.count)
      let differing = zip(actual, reference).filter { !Self.same($0, $1) }.count
      #expect(differing == 0, "\(tensor): \(differing) values differ")
    }
  }

  @Test func anAllZeroFloat8RowDequantizesToNaNAsInTorchAO() throws {
    let scheme = Float8Scheme(source: .bf16)
    let input = Buffers.bytes([0, 0, 0, 0, 1, -2, 0.5, 0], as: .bf16)
    let values = try scheme.dequantize(
      try input.withUnsafeBytes { try scheme.quantize($0, shape: [2, 4]) }, shape: [2, 4])
    #expect(values[0..<4].allSatisfy { $0.isNaN })
    #expect(Array(values[4...]) == [1, -2, 0.5, 0])
  }

  @Test func int8RowsOfExactMultiplesOfTheScaleComeBackExactly() throws {
    // amax 127.5·2⁻⁷ makes the scale 2⁻⁷; every k·2⁻⁷ with |k| ≤ 127 is then exact, and the
    // amax itself (code 127.5, a tie that rounds to 128) clamps to 127.
    let row: [Float] = [127.5, -127, 64, -1, 0, 3, -0.0, 100].map { $0 * 0x1p-7 }
    let scheme = Int8Scheme(source: .fp32)
    let parts = try Buffers.bytes(row, as: .fp32).withUnsafeBytes { try scheme.quantize($0, shape: [1, 8]) }
    let values = try scheme.dequantize(parts, shape: [1, 8])
    #expect(values == [127, -127, 64, -1, 0, 3, 0, 100].map { $0 * 0x1p-7 })
  }

  static func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

  /// The spec's dequantize formula over torchao's parts, written without the library's kernels.
  static func formula(_ scheme: any QuantizationScheme, _ parts: [PartName: [UInt8]], shape: [Int]) throws -> [Float] {
    let format = scheme.source
    let rowLength = shape.last!
    let count = shape.reduce(1, *)
    let qdata = try #require(parts[.qdata])
    func f32(_ bytes: [UInt8], _ index: Int) -> Float {
      Buffers.floats(Array(bytes[4 * index..<4 * index + 4]), as: .fp32)[0]
    }
    /// The scale block of element `index` for a row-major `[rows, blocks]` (or single) scale.
    func block(_ index: Int, scales: Int) -> Int { scales == 1 ? 0 : index / (count / scales) }
    switch scheme {
    case is Int8Scheme, is Float8Scheme:
      let scale = try #require(parts[.scale])
      return (0..<count).map { index in
        let q = scheme is Int8Scheme ? Float(Int8(bitPattern: qdata[index])) : e4m3(qdata[index])
        return format.round(q * f32(scale, block(index, scales: scale.count / 4)))
      }
    case let intx as IntxScheme:
      let scaleFormat = intx.scaleFormat ?? format
      let scales = Buffers.floats(try #require(parts[.scale]), as: scaleFormat)
      let zeros = try #require(parts[.zeroPoint])
      return (0..<count).map { index in
        let b = block(index, scales: scales.count)
        let shifted = format.round(Float(Int8(bitPattern: qdata[index])) - Float(Int8(bitPattern: zeros[b])))
        let product = shifted * scales[b]
        return format.round(scaleFormat == format ? format.round(product) : product)
      }
    case let int4 as Int4Scheme:
      let scales = Buffers.floats(try #require(parts[.scale]), as: format)
      let zeros = Buffers.floats(try #require(parts[.zeroPoint]), as: format)
      let n = shape[shape.count - 2]
      let groups = rowLength / int4.groupSize
      return (0..<count).map { index in
        let (row, k) = index.quotientAndRemainder(dividingBy: rowLength)
        let byte = qdata[index / 2]
        let nibble = Int(k % 2 == 0 ? byte & 0xF : byte >> 4)
        let q = Float(nibble >= 8 ? nibble - 16 : nibble)
        let at = ((row / n) * groups + k / int4.groupSize) * n + row % n
        return format.round(q * scales[at] + zeros[at])
      }
    case is MXScheme, is NVFP4Scheme:
      let blockSize = scheme is MXScheme ? 32 : 16
      let scale = try #require(parts[.scale])
      let paddedColumns = (rowLength / blockSize + 3) / 4 * 4
      let isFloat8 = (scheme as? MXScheme)?.element == .float8E4M3
      return (0..<count).map { index in
        let (row, k) = index.quotientAndRemainder(dividingBy: rowLength)
        let c = k / blockSize
        // torchao's to_blocked: [R/128, C/4, 32, 4, 4] order.
        let at = ((row / 128) * (paddedColumns / 4) + c / 4) * 512 + (row % 32) * 16 + (row % 128 / 32) * 4 + c % 4
        let value = isFloat8 ? e4m3(qdata[index]) : e2m1(k % 2 == 0 ? qdata[index / 2] & 0xF : qdata[index / 2] >> 4)
        var blockScale: Float
        if scheme is MXScheme {
          blockScale =
            scale[at] == 255 ? .nan : Float(Double(sign: .plus, exponent: Int(scale[at]) - 127, significand: 1))
        } else {
          blockScale = e4m3(scale[at])
          if let perTensor = parts[.perTensorScale] {
            blockScale = f32(perTensor, row / shape[shape.count - 2]) * blockScale
          }
        }
        return format.round(value * blockScale)
      }
    default:
      throw FixtureError(message: "no formula for \(scheme)")
    }
  }

  static func e4m3(_ code: UInt8) -> Float {
    if code & 0x7F == 0x7F { return .nan }
    return Float(Float8E4M3ConversionTests.definedValue(code))
  }

  static func e2m1(_ code: UInt8) -> Float {
    let magnitude = Float4E2M1ConversionTests.grid[Int(code & 7)]
    return code & 8 != 0 ? -magnitude : magnitude
  }
}
