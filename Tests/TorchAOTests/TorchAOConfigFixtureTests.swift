import Quantization
import SafeTensors
import Testing
import TorchAO

/// Every golden fixture, end to end through the TorchAO layer: the config read from the
/// fixture's config.json decides, for every input tensor, what torchao decided; quantizing gives
/// every part bit for bit with its dtype and shape; the metadata entry and transformers'
/// `quantization_config` are torchao's.
@Suite struct TorchAOConfigFixtureTests {
  @Test(arguments: TorchAOFixtures.names)
  func quantizingTheInputGivesTorchAOsTensorsAndMetadata(fixture: String) throws {
    let json = try TorchAOFixtures.config(fixture)
    let config = try TorchAOConfig(configDict: try #require(json["torchao_config"]))
    #expect(config.transformersQuantizationConfig == json["transformers_quantization_config"])

    let input = try TorchAOFixtures.input(fixture)
    let expected = try TorchAOFixtures.expected(fixture)
    let metadata = try TorchAOMetadata(decoding: try #require(expected.header.metadata))
    for member in try #require(json["outcome"]?.members) {
      let tensor = try input.tensor(named: member.key)
      let source = try #require(FloatFormat(rawValue: tensor.dtype.rawValue))
      guard member.value.string != "Tensor" else {
        // Biases, and the weights torchao leaves plain: written as they came.
        if tensor.shape.count >= 2 {
          #expect(try config.decision(shape: tensor.shape, source: source) != .quantize, "\(member.key)")
        }
        #expect(try expected.bytes(of: expected.tensor(named: member.key)) == input.bytes(of: tensor))
        continue
      }
      #expect(try config.decision(shape: tensor.shape, source: source) == .quantize, "\(member.key)")
      let description = config.description(shape: tensor.shape, source: source)
      #expect(description.encoded() == expected.header.metadata?[member.key], "\(member.key)")
      #expect(metadata.description(of: member.key) == description)

      let scheme = config.scheme(source: source)
      let layout = try scheme.outputLayout(shape: tensor.shape)
      let parts = try input.bytes(of: tensor).withUnsafeBytes { try scheme.quantize($0, shape: tensor.shape) }
      #expect(Set(parts.keys.map(\.rawValue)) == Set(description.tensorDataNames), "\(member.key)")
      for part in layout.parts {
        let stored = try expected.tensor(named: FlattenedName.name(parameter: member.key, part: part.name.rawValue))
        #expect(stored.dtype.rawValue == part.elementType.rawValue, "\(stored.name)")
        #expect(stored.shape == part.shape, "\(stored.name)")
        #expect(parts[part.name] == (try expected.bytes(of: stored)), "\(stored.name) differs from torchao")
      }
    }
  }

  @Test func aConfigWithAFieldSafeshardDoesNotModelIsRefused() throws {
    let dict = TorchAOConfig.int8WeightOnly(.perRow).configDict
    let text = JSONWriter.string(dict).replacingOccurrences(
      of: #""set_inductor_config":true"#, with: #""set_inductor_config":false"#)
    let error = #expect(throws: TorchAOError.self) { try TorchAOConfig(configDict: JSONParser.parse(text)) }
    #expect(error?.code == .unsupported)
    let unknown = #expect(throws: TorchAOError.self) {
      try TorchAOConfig(configDict: JSONParser.parse(#"{"_type": "GPTQConfig", "_data": {}, "_version": 1}"#))
    }
    #expect(unknown?.code == .unsupported)
  }

  @Test func float8DynamicPerRowRefusesWeightsThatAreNotBFloat16() {
    let error = #expect(throws: TorchAOError.self) {
      try TorchAOConfig.float8Dynamic(.perRow).decision(shape: [32, 64], source: .fp16)
    }
    #expect(error?.code == .unsupported)
    #expect(error?.message.contains("bfloat16") == true)
  }
}
