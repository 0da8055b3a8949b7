import Quantization
import Testing

@Suite struct MXSchemeTests {
  /// The scale byte of a one-row MX tensor whose first block has largest magnitude `amax`.
  static func scaleByte(_ scheme: MXScheme, amax: Float) throws -> UInt8 {
    var values = [Float](repeating: 0, count: 32)
    values[5] = -amax
    return try #require(try quantize(scheme, values, shape: [1, 32])[.scale]?.first)
  }

  @Test(arguments: [
    (Float(448), UInt8(127)), (450, 128), (224, 126), (0, 0), (0x1p-140, 0), (.infinity, 254), (.nan, 255),
  ])
  func rceilScalesAreTheCeilingPowerOfTwoOfAmaxOver448(amax: Float, byte: UInt8) throws {
    #expect(try Self.scaleByte(MXScheme(source: .bf16, element: .float8E4M3), amax: amax) == byte)
  }

  @Test(arguments: [(Float(448), UInt8(127)), (510, 127), (512, 128), (0, 0), (.nan, 255)])
  func floorScalesTakeTheExponentOfAmaxMinus8(amax: Float, byte: UInt8) throws {
    #expect(try Self.scaleByte(MXScheme(source: .bf16, element: .float8E4M3, scaling: .floor), amax: amax) == byte)
  }

  @Test func scalesAreSwizzledIntoPaddedTiles() throws {
    // 130 rows × 5 blocks: scale (r, c) is 2^(r % 7 + c) · 448 so every byte is 127 + r % 7 + c.
    let (rows, blocks) = (130, 5)
    var values = [Float](repeating: 0, count: rows * blocks * 32)
    for row in 0..<rows {
      for block in 0..<blocks { values[(row * blocks + block) * 32] = 448 * Float(1 << (row % 7 + block)) }
    }
    let scheme = MXScheme(source: .bf16, element: .float8E4M3)
    let layout = try scheme.outputLayout(shape: [rows, blocks * 32])
    #expect(layout.part(.scale)?.shape == [64, 32] && layout.rowAlignment == 128)
    let scales = try #require(try quantize(scheme, values, shape: [rows, blocks * 32])[.scale])
    var expected = [UInt8](repeating: 0, count: 2 * 128 * 8)
    for row in 0..<rows {
      for block in 0..<blocks {
        let at = ((row / 128) * 2 + block / 4) * 512 + (row % 32) * 16 + (row % 128 / 32) * 4 + block % 4
        expected[at] = UInt8(127 + row % 7 + block)
      }
    }
    #expect(scales == expected)
  }

  @Test func mxfp4PacksTheEvenElementLow() throws {
    let values: [Float] = [6, -0.5] + [Float](repeating: 0, count: 30)
    let parts = try quantize(MXScheme(source: .bf16, element: .float4E2M1), values, shape: [1, 32])
    #expect(parts[.qdata]?.first == 0x97)
    #expect(parts[.qdata]?.count == 16)
  }

  @Test func inputsTorchAORefusesAreTypedErrors() {
    #expect(
      errorCode { _ = try MXScheme(source: .fp16, element: .float8E4M3).outputLayout(shape: [16, 64]) }
        == .unsupportedFormat)
    #expect(
      errorCode { _ = try MXScheme(source: .fp32, element: .float8E4M3).outputLayout(shape: [16, 64]) }
        == .unsupportedFormat)
    #expect(
      errorCode { _ = try MXScheme(source: .bf16, element: .float8E4M3).outputLayout(shape: [16, 48]) }
        == .unsupportedShape)
    #expect(
      errorCode { _ = try MXScheme(source: .bf16, element: .float8E4M3).outputLayout(shape: [2, 64, 64]) }
        == .unsupportedShape)
  }
}
