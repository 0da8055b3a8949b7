import Quantization
import Testing

@Suite struct Float8SchemeTests {
  @Test func partsHaveTorchAOsShapesAndTypes() throws {
    let layout = try Float8Scheme(source: .bf16).outputLayout(shape: [2, 16, 64])
    #expect(layout.parts.map(\.name) == [.qdata, .scale])
    #expect(layout.parts.map(\.elementType) == [.f8e4m3, .f32])
    #expect(layout.parts.map(\.shape) == [[2, 16, 64], [2, 16, 1]])
  }

  @Test func anAllZeroRowGetsScaleZeroAndNaNCodesAsInTorchAO() throws {
    let parts = try quantize(Float8Scheme(source: .bf16), [0, -0.0, 0, 0, 448, -1, 0, -0.0], shape: [2, 4])
    #expect(parts[.scale] == Buffers.bytes([0, 1], as: .fp32))
    #expect(parts[.qdata] == [0xFF, 0xFF, 0xFF, 0xFF, 0x7E, 0xB8, 0x00, 0x80])
  }

  @Test func fp16ScalesUnderflowForTinyRows() throws {
    // amax 3e-5: the fp16 scale is the smallest subnormal 2⁻²⁴, so 3e-5 saturates to 448.
    let small = try quantize(Float8Scheme(source: .fp16), [3e-5, -1e-5], shape: [1, 2])
    #expect(small[.scale] == Buffers.bytes([0x1p-24], as: .fp32))
    #expect(small[.qdata]?.first == 0x7E)
    // amax 1e-5: the scale underflows to 0; non-zeros saturate and zeros become NaN.
    let zero = try quantize(Float8Scheme(source: .fp16), [1e-5, -1e-5, 0, 0], shape: [1, 4])
    #expect(zero[.scale] == Buffers.bytes([0], as: .fp32))
    #expect(zero[.qdata] == [0x7E, 0xFE, 0xFF, 0xFF])
  }

  @Test func perTensorScalesComeFromTheStatistic() throws {
    let scheme = Float8Scheme(source: .fp32, granularity: .perTensor)
    let parts = try quantize(scheme, [1, 2, -896, 4], shape: [2, 2])
    #expect(parts[.scale] == Buffers.bytes([2], as: .fp32))
    #expect(parts[.qdata]?[2] == 0xFE)
  }

  @Test func aGroupSizeThatDoesNotDivideKIsRefused() {
    #expect(
      errorCode { _ = try Float8Scheme(source: .bf16, granularity: .perGroup(64)).outputLayout(shape: [16, 96]) }
        == .unsupportedShape)
  }
}
