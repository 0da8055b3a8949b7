import Quantization
import Testing

/// Quantizing a tensor chunk by chunk, at awkward row boundaries and out of order, gives the same
/// bytes as quantizing it at once.
@Suite struct ChunkedQuantizationTests {
  static let schemes: [any QuantizationScheme] = [
    Int8Scheme(source: .bf16),
    Int8Scheme(source: .fp16, granularity: .perTensor),
    Int8Scheme(source: .fp32, granularity: .perGroup(32), reduceRange: true),
    Float8Scheme(source: .bf16),
    Float8Scheme(source: .fp16, granularity: .perTensor),
    Float8Scheme(source: .fp32, granularity: .perGroup(16)),
    IntxScheme(source: .bf16, bits: 4, mapping: .asymmetric, granularity: .perGroup(32)),
    IntxScheme(source: .fp16, bits: 8, granularity: .perRow),
    IntxScheme(
      source: .fp32, bits: 3, mapping: .symmetricNoClippingError, granularity: .perGroup(16), scaleFormat: .bf16),
    Int4Scheme(source: .bf16, groupSize: 32),
    Int4Scheme(source: .fp16, groupSize: 64),
    MXScheme(source: .bf16, element: .float8E4M3),
    MXScheme(source: .bf16, element: .float4E2M1, scaling: .floor),
    MXScheme(source: .fp32, element: .float8E4M3, scaling: .floor),
    NVFP4Scheme(source: .bf16),
    NVFP4Scheme(source: .fp32, usesPerTensorScale: false),
  ]

  /// Row boundaries that hit single rows, odd counts and tile edges (304 rows: a short last tile).
  static func cuts(rows: Int, alignment: Int) -> [Int] {
    alignment == 1
      ? [1, 2, 7, 127, 128, 130, 255, 303, 383].filter { $0 < rows }
      : stride(from: alignment, to: rows, by: alignment).map { $0 }
  }

  @Test(arguments: schemes)
  func chunkedQuantizationEqualsWholeTensorQuantizationFor2DWeights(scheme: any QuantizationScheme) throws {
    let shape = [304, 64]
    let input = Buffers.bytes(Buffers.randomValues(count: 304 * 64, seed: 7, scale: 0.1), as: scheme.source)
    let whole = try input.withUnsafeBytes { try scheme.quantize($0, shape: shape) }
    let alignment = try scheme.outputLayout(shape: shape).rowAlignment
    let chunked = try Buffers.quantizeInChunks(
      scheme, input, shape: shape, cuts: Self.cuts(rows: 304, alignment: alignment))
    #expect(chunked == whole)
  }

  @Test(arguments: schemes.filter { !($0 is IntxScheme) })
  func chunkedQuantizationEqualsWholeTensorQuantizationFor3DWeights(scheme: any QuantizationScheme) throws {
    let shape = [3, 128, 64]
    let input = Buffers.bytes(Buffers.randomValues(count: 3 * 128 * 64, seed: 11, scale: 3), as: scheme.source)
    let whole = try input.withUnsafeBytes { try scheme.quantize($0, shape: shape) }
    let alignment = try scheme.outputLayout(shape: shape).rowAlignment
    let chunked = try Buffers.quantizeInChunks(
      scheme, input, shape: shape, cuts: Self.cuts(rows: 384, alignment: alignment))
    #expect(chunked == whole)
  }

  @Test(arguments: TorchAOFixture.names)
  func everyFixtureQuantizedOneRowOrOneTileAtATimeGivesTorchAOsParts(fixture name: String) throws {
    let fixture = try TorchAOFixture(name)
    for tensor in fixture.quantizedTensors {
      let (shape, input) = try fixture.input(tensor)
      let scheme = try #require(try fixture.scheme(for: tensor, shape: shape))
      let layout = try scheme.outputLayout(shape: shape)
      let cuts = stride(from: layout.rowAlignment, to: layout.rowCount, by: layout.rowAlignment).map { $0 }
      let chunked = try Buffers.quantizeInChunks(scheme, input, shape: shape, cuts: cuts)
      for (part, expected) in try fixture.expectedParts(tensor) {
        #expect(chunked[part] == expected.bytes, "\(tensor) \(part.rawValue)")
      }
    }
  }
}
