import Quantization
import Testing

@Suite struct NVFP4SchemeTests {
  @Test func partsHaveTorchAOsShapes() throws {
    let flat = try NVFP4Scheme(source: .bf16).outputLayout(shape: [16, 96])
    #expect(flat.parts.map(\.name) == [.perTensorScale, .qdata, .scale])
    #expect(flat.parts.map(\.shape) == [[], [16, 48], [32, 32]])
    #expect(flat.parts.map(\.elementType) == [.f32, .u8, .f8e4m3])
    let experts = try NVFP4Scheme(source: .fp32).outputLayout(shape: [2, 128, 32])
    #expect(experts.parts.map(\.shape) == [[2, 1, 1], [2, 128, 16], [2, 32, 16]])
    let plain = try NVFP4Scheme(source: .bf16, usesPerTensorScale: false).outputLayout(shape: [16, 96])
    #expect(plain.parts.map(\.name) == [.qdata, .scale])
  }

  @Test func anAllZeroBlockStoresTheSmallestNormalScale() throws {
    // Row 0: a zero block, then 0.25…4; rows 1…15 all zero.
    let values =
      [Float](repeating: 0, count: 16) + (1...16).map { Float($0) / 4 } + [Float](repeating: 0, count: 15 * 32)
    let parts = try quantize(NVFP4Scheme(source: .bf16, usesPerTensorScale: false), values, shape: [16, 32])
    let scales = try #require(parts[.scale])
    // Row r's two scales sit at r·16 + c; columns 2 and 3 are padding.
    #expect(scales[0] == 0x08 && scales[1] != 0x08)
    #expect((1..<16).allSatisfy { scales[$0 * 16] == 0x08 && scales[$0 * 16 + 1] == 0x08 && scales[$0 * 16 + 2] == 0 })
    #expect(parts[.qdata]?[0..<8].allSatisfy { $0 == 0 } == true)
  }

  @Test func perTensorScalesArePerExpertAmaxOver2688() throws {
    let scheme = NVFP4Scheme(source: .fp32)
    var values = [Float](repeating: 0.5, count: 2 * 128 * 16)
    values[7] = -2688
    values[128 * 16 + 9] = 26.88
    let parts = try quantize(scheme, values, shape: [2, 128, 16])
    #expect(parts[.perTensorScale] == Buffers.bytes([1, 26.88 / 2688], as: .fp32))
  }

  @Test func shapesTorchAORefusesAreTypedErrors() {
    #expect(errorCode { _ = try NVFP4Scheme(source: .bf16).outputLayout(shape: [16, 40]) } == .unsupportedShape)
    #expect(errorCode { _ = try NVFP4Scheme(source: .bf16).outputLayout(shape: [8, 64]) } == .unsupportedShape)
    #expect(errorCode { _ = try NVFP4Scheme(source: .bf16).outputLayout(shape: [2, 64, 64]) } == .unsupportedShape)
    #expect(errorCode { _ = try NVFP4Scheme(source: .fp16).outputLayout(shape: [16, 64]) } == .unsupportedFormat)
  }
}
