import Quantization
import Testing

/// Chunk requests and statistics that do not fit the layout are refused with typed errors.
@Suite struct ChunkValidationTests {
  /// Runs `scheme` on `rows` of a `[256, 32]` bf16 tensor with buffers of the given sizes.
  static func code(
    _ scheme: any QuantizationScheme, rows: Range<Int>, inputRows: Int? = nil, sizes: [PartName: Int]
  ) -> QuantizationError.Code? {
    let input = [UInt8](repeating: 0, count: (inputRows ?? rows.count) * 32 * 2)
    let buffers = sizes.mapValues { UnsafeMutableRawBufferPointer.allocate(byteCount: $0, alignment: 8) }
    defer { buffers.values.forEach { $0.deallocate() } }
    return input.withUnsafeBytes { bytes in
      errorCode { try scheme.quantize(bytes, shape: [256, 32], rows: rows, statistic: nil, into: buffers) }
    }
  }

  @Test func aWellFormedChunkIsAccepted() {
    #expect(Self.code(Int8Scheme(source: .bf16), rows: 3..<5, sizes: [.qdata: 64, .scale: 8, .zeroPoint: 2]) == nil)
    #expect(
      Self.code(MXScheme(source: .bf16, element: .float8E4M3), rows: 128..<256, sizes: [.qdata: 4096, .scale: 512])
        == nil)
  }

  @Test func rowsOutsideTheTensorOrOffTheTilesAreRefused() {
    #expect(
      Self.code(Int8Scheme(source: .bf16), rows: 255..<257, sizes: [.qdata: 64, .scale: 8, .zeroPoint: 2])
        == .invalidArgument)
    #expect(
      Self.code(MXScheme(source: .bf16, element: .float8E4M3), rows: 1..<129, sizes: [.qdata: 4096, .scale: 512])
        == .invalidArgument)
  }

  @Test func inputOrBuffersOfTheWrongSizeAreRefused() {
    #expect(
      Self.code(Int8Scheme(source: .bf16), rows: 0..<2, inputRows: 3, sizes: [.qdata: 64, .scale: 8, .zeroPoint: 2])
        == .invalidArgument)
    #expect(
      Self.code(Int8Scheme(source: .bf16), rows: 0..<2, sizes: [.qdata: 63, .scale: 8, .zeroPoint: 2])
        == .invalidArgument)
    #expect(Self.code(Int8Scheme(source: .bf16), rows: 0..<2, sizes: [.qdata: 64, .scale: 8]) == .invalidArgument)
  }

  /// Every scheme on a `[256, 64]` weight (NVFP4 and MX need multiples of 16 and 32 columns).
  static let schemes: [any QuantizationScheme] = [
    Int8Scheme(source: .bf16), Float8Scheme(source: .bf16),
    IntxScheme(source: .bf16, bits: 4, mapping: .asymmetric, granularity: .perGroup(32), scaleFormat: nil),
    Int4Scheme(source: .bf16, groupSize: 32), MXScheme(source: .bf16, element: .float4E2M1),
    NVFP4Scheme(source: .bf16, usesPerTensorScale: false),
  ]

  @Test(arguments: schemes.indices)
  func noRowsGoIntoEmptyBuffersWithoutABaseAddress(scheme index: Int) throws {
    let scheme = Self.schemes[index]
    let layout = try scheme.outputLayout(shape: [256, 64])
    // Parts of no rows are empty; gathered parts (Int4's scales) are whole whatever the rows.
    var outputs: [PartName: UnsafeMutableRawBufferPointer] = [:]
    for part in layout.parts where part.placement != .tensor {
      let size = part.byteRange(rows: 0..<0).count
      outputs[part.name] =
        size == 0
        ? UnsafeMutableRawBufferPointer(start: nil, count: 0)
        : UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
    }
    defer {
      for buffer in outputs.values { buffer.deallocate() }
    }
    #expect(outputs.values.contains { $0.baseAddress == nil })
    try scheme.quantize(
      UnsafeRawBufferPointer(start: nil, count: 0), shape: [256, 64], rows: 0..<0, statistic: nil, into: outputs)
  }

  @Test func aStatisticOfAnotherTensorIsRefused() throws {
    let scheme = NVFP4Scheme(source: .bf16)
    let other = try #require(try scheme.makeStatistic(shape: [128, 32]))
    #expect(errorCode { _ = try scheme.tensorParts(shape: [256, 32], statistic: other) } == .invalidArgument)
    var statistic = try #require(try scheme.makeStatistic(shape: [256, 32]))
    #expect(errorCode { try statistic.merge(other) } == .invalidArgument)
    #expect(
      errorCode { try [UInt8](repeating: 0, count: 63).withUnsafeBytes { try statistic.accumulate($0, firstRow: 0) } }
        == .invalidArgument)
    #expect(
      errorCode { try [UInt8](repeating: 0, count: 64).withUnsafeBytes { try statistic.accumulate($0, firstRow: 256) } }
        == .invalidArgument)
  }

  @Test func theStatisticIsTheLargestMagnitudeWithNaNWinning() throws {
    var statistic = try #require(try Int8Scheme(source: .fp16, granularity: .perTensor).makeStatistic(shape: [2, 2]))
    try Buffers.bytes([1, -3, 2, 0.5], as: .fp16).withUnsafeBytes { try statistic.accumulate($0, firstRow: 0) }
    #expect(statistic.values == [3])
    try Buffers.bytes([.nan, 1], as: .fp16).withUnsafeBytes { try statistic.accumulate($0, firstRow: 1) }
    #expect(statistic.values[0].isNaN)
  }
}
