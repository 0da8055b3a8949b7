import Foundation
import Quantization
import SafeTensors
import Testing
import TorchAO

@Suite struct TorchAOCheckpointTests {
  static func scratch() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-torchao-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  @Test(arguments: TorchAOFixtures.names)
  func everyFixtureDecodesIntoItsSubclassesAndDequantizes(fixture: String) throws {
    let path = TorchAOFixtures.directory.appendingPathComponent("\(fixture)/expected.safetensors").path
    let decoded = try TorchAOCheckpoint(Checkpoint(path: path))
    let outcome = try #require(TorchAOFixtures.config(fixture)["outcome"]?.members)
    #expect(decoded.weights.map(\.name) == outcome.filter { $0.value.string != "Tensor" }.map(\.key))
    let input = try TorchAOFixtures.input(fixture)
    let config = try TorchAOConfig(configDict: try #require(TorchAOFixtures.config(fixture)["torchao_config"]))
    for weight in decoded.weights {
      #expect(weight.description.subclass == outcome.first { $0.key == weight.name }?.value.string)
      #expect(weight.shape == (try input.tensor(named: weight.name).shape))
      let values = try weight.dequantize()
      #expect(values.count == weight.shape.reduce(1, *))
      // The decoded scheme dequantizes the stored parts as the fixture's own config does.
      let source = try #require(FloatFormat(rawValue: input.tensor(named: weight.name).dtype.rawValue))
      #expect(weight.scheme.source == source)
      var parts: [PartName: [UInt8]] = [:]
      for (name, part) in weight.parts { parts[name] = try part.file.bytes(of: part.tensor) }
      let expected = try config.scheme(source: source).dequantize(parts, shape: weight.shape)
      #expect(values.map(\.bitPattern) == expected.map(\.bitPattern), "\(weight.name)")
    }
  }

  @Test func partsSpreadOverShardsAreGathered() throws {
    let directory = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: directory) }
    try EditableCheckpoint(TorchAOFixtures.expected("int8_weight_only__bf16")).write(to: directory, shards: 4)
    let decoded = try TorchAOCheckpoint(Checkpoint(path: directory.path))
    #expect(decoded.weights.count == 5)
    let scale = try #require(decoded.weight(named: "a.weight")?.parts[.scale])
    let qdata = try #require(decoded.weight(named: "a.weight")?.parts[.qdata])
    #expect(scale.file.path != qdata.file.path)
    #expect(try decoded.floatValues(of: "c.bias").count == 32)
    #expect(decoded.weight(named: "a.weight")?.summary == "Int8Tensor int8 per-row, bfloat16 [16, 96]")
  }

  struct Damage: CustomTestStringConvertible, Sendable {
    var name: String
    var code: TorchAOError.Code
    var tensor: String
    var edit: @Sendable (inout EditableCheckpoint) -> Void
    var testDescription: String { name }
  }

  static let damages: [Damage] = [
    Damage(name: "missing part", code: .missingPart, tensor: "a.weight") { $0.remove("a._weight_scale") },
    Damage(name: "extra part", code: .extraPart, tensor: "a._weight_bogus") {
      $0.tensors.append((TensorSpec(name: "a._weight_bogus", dtype: .f32, shape: [1]), [0, 0, 0, 0]))
    },
    Damage(name: "wrong part dtype", code: .partDType, tensor: "a._weight_scale") {
      $0.replace("a._weight_scale", dtype: .f16)
    },
    Damage(name: "wrong part shape", code: .partShape, tensor: "a._weight_scale") {
      $0.replace("a._weight_scale", shape: [16, 2])
    },
    Damage(name: "block_size that does not tile the shape", code: .partShape, tensor: "a.weight") {
      $0.metadata["a.weight"] = $0.metadata["a.weight"]!.replacingOccurrences(of: "[1, 96]", with: "[1, 7]")
    },
    Damage(name: "unknown subclass", code: .unknownType, tensor: "a.weight") {
      $0.metadata["a.weight"] = $0.metadata["a.weight"]!.replacingOccurrences(of: "Int8Tensor", with: "Int9Tensor")
    },
    Damage(name: "part names the scheme does not have", code: .malformedEntry, tensor: "a.weight") {
      $0.metadata["a.weight"] = $0.metadata["a.weight"]!.replacingOccurrences(
        of: #"["zero_point", "qdata", "scale"]"#, with: #"["qdata", "scale"]"#)
      $0.remove("a._weight_zero_point")
    },
    Damage(name: "tensor_names lists a missing entry", code: .tensorNames, tensor: "z.weight") {
      $0.metadata["tensor_names"] = $0.metadata["tensor_names"]!.replacingOccurrences(of: "]", with: #", "z.weight"]"#)
    },
  ]

  @Test(arguments: damages)
  func damagedCheckpointsAreRefusedNamingTheTensorAndRule(_ damage: Damage) throws {
    let directory = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: directory) }
    var editable = try EditableCheckpoint(TorchAOFixtures.expected("int8_weight_only__bf16"))
    damage.edit(&editable)
    try editable.write(to: directory)
    let problems = TorchAOCheckpoint.problems(in: try Checkpoint(path: directory.path))
    #expect(problems.map(\.code) == [damage.code])
    #expect(problems.first?.tensor == damage.tensor)
    #expect(problems.first?.file != nil)
  }

  @Test func shardsWithDifferentMetadataAreRefused() throws {
    let directory = try Self.scratch()
    defer { try? FileManager.default.removeItem(at: directory) }
    let editable = try EditableCheckpoint(TorchAOFixtures.expected("int8_weight_only__bf16"))
    try editable.write(to: directory, shards: 2) { shard in
      shard == 1 ? editable.metadata.filter { $0.key != "b.weight" } : nil
    }
    let problems = TorchAOCheckpoint.problems(in: try Checkpoint(path: directory.path))
    #expect(problems.map(\.code) == [.shardMetadata])
    #expect(problems.first?.file?.hasSuffix("model-2-of-2.safetensors") == true)
  }
}

/// Dequantized values against torchao's: Tests/Fixtures/dequantized holds, for every quantized
/// tensor of every fixture, the values of the SPEC's dequantize formulas computed in numpy from
/// the stored parts (Tests/Interop/make_dequantized_fixtures.py), which equal torchao 0.18's
/// `dequantize()` bit for bit wherever torchao has one (172 of 181 tensors; Int4Tensor has none).
@Suite struct DequantizedValueTests {
  @Test(arguments: TorchAOFixtures.names)
  func dequantizingADecodedFixtureGivesTorchAOsValues(fixture: String) throws {
    let path = TorchAOFixtures.directory.appendingPathComponent("\(fixture)/expected.safetensors").path
    let decoded = try TorchAOCheckpoint(Checkpoint(path: path))
    let golden = try SafeTensorsFile(
      path: TorchAOFixtures.directory.deletingLastPathComponent().appendingPathComponent(
        "dequantized/\(fixture).safetensors"
      ).path)
    #expect(Set(golden.header.tensors.map(\.name)) == Set(decoded.weights.map(\.name)))
    for weight in decoded.weights {
      let expected = try golden.tensor(named: weight.name)
      #expect(expected.shape == weight.shape)
      let format = try #require(FloatFormat(rawValue: expected.dtype.rawValue))
      #expect(format == weight.scheme.source)
      let bytes = try golden.bytes(of: expected)
      let want = bytes.withUnsafeBytes { raw in
        (0..<expected.elementCount).map { format.value(at: $0, in: raw.baseAddress!) }
      }
      let got = try weight.dequantize()
      let mismatches = zip(got, want).filter { !($0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN)) }.count
      #expect(got.count == want.count)
      #expect(mismatches == 0, "\(weight.name): \(mismatches) of \(want.count) values differ from torchao's")
    }
  }
}
