import Quantization
import SafeTensors
import Testing

/// Every quantized tensor of every torchao fixture, quantized here, equals torchao's parts bit
/// for bit, with torchao's shapes and dtypes.
@Suite struct GoldenFixtureTests {
  @Test func allFortyNineFixturesArePresent() {
    #expect(TorchAOFixture.names.count == 49)
  }

  @Test(arguments: TorchAOFixture.names)
  func quantizingTheInputGivesTorchAOsPartsBitForBit(fixture name: String) throws {
    let fixture = try TorchAOFixture(name)
    for (tensor, result) in fixture.outcome.sorted(by: { $0.key < $1.key }) {
      let (shape, bytes) = try fixture.input(tensor)
      let scheme = try fixture.scheme(for: tensor, shape: shape)
      guard result != "Tensor" else {
        #expect(scheme == nil, "\(tensor) is left plain by torchao")
        continue
      }
      let quantizer = try #require(scheme, "\(tensor) is quantized by torchao")
      let layout = try quantizer.outputLayout(shape: shape)
      let expected = try fixture.expectedParts(tensor)
      #expect(Set(expected.keys) == Set(layout.parts.map(\.name)), "\(tensor) has torchao's parts")
      let parts = try bytes.withUnsafeBytes { try quantizer.quantize($0, shape: shape) }
      for part in layout.parts {
        let (info, expectedBytes) = try #require(expected[part.name])
        #expect(part.shape == info.shape, "\(tensor) \(part.name.rawValue) shape")
        #expect(part.elementType.rawValue == info.dtype.rawValue, "\(tensor) \(part.name.rawValue) dtype")
        let actual = try #require(parts[part.name])
        let differing = zip(actual, expectedBytes).filter { $0 != $1 }.count
        #expect(
          actual.count == expectedBytes.count && differing == 0,
          "\(tensor) \(part.name.rawValue): \(differing) of \(expectedBytes.count) bytes differ")
      }
    }
  }
}
