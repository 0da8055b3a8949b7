import SafeTensors
import Testing
import TorchAO

@Suite struct TorchAOMetadataTests {
  @Test func all49FixturesArePresent() {
    #expect(TorchAOFixtures.names.count == 49)
  }

  @Test(arguments: TorchAOFixtures.names)
  func everyFixturesMetadataDecodesAndReencodesToTorchAOsExactStrings(fixture: String) throws {
    let file = try TorchAOFixtures.expected(fixture)
    let metadata = try #require(file.header.metadata)
    let decoded = try TorchAOMetadata(decoding: metadata)
    // What the fixture's config.json says became of every tensor.
    let outcome = try #require(TorchAOFixtures.config(fixture)["outcome"]?.members)
    #expect(decoded.entries.map(\.name) == outcome.map(\.key))
    for member in outcome {
      #expect(decoded.description(of: member.key)?.subclass ?? "Tensor" == member.value.string)
    }
    // json.dumps formatting reproduced byte for byte, tensor_names included.
    #expect(decoded.encoded() == metadata)
  }

  @Test func flattenedNamesFollowTorchAO() {
    #expect(
      FlattenedName.name(parameter: "model.layers.0.mlp.down_proj.weight", part: "qdata")
        == "model.layers.0.mlp.down_proj._weight_qdata")
    #expect(FlattenedName.name(parameter: "experts.w", part: "scale") == "experts._w_scale")
    #expect(FlattenedName.name(parameter: "weight", part: "qdata") == "_weight_qdata")
    let prefixes = [
      "": "__", ".": ".__", "a.": "a.__", "a.b.c": "a.b._c_", "caf\u{E9}.w": "caf\u{E9}._w_",
      "a.\u{301}b": "_a.\u{301}b_", "a.b.\u{301}c": "a._b.\u{301}c_",
    ]
    for (parameter, prefix) in prefixes {
      #expect(Array(FlattenedName.prefix(of: parameter).utf8) == Array(prefix.utf8), "\(parameter)")
    }
  }

  static let int8 =
    #"{"_type": "Int8Tensor", "_data": {"act_quant_kwargs": null, "reduce_range": false, "block_size": [1, 96], "dtype": {"_type": "torch.dtype", "_data": "bfloat16"}}, "_tensor_data_names": ["zero_point", "qdata", "scale"]}"#

  struct Bad: CustomTestStringConvertible, Sendable {
    var name: String
    var metadata: [String: String]
    var code: TorchAOError.Code
    var tensor: String?
    var testDescription: String { name }
  }

  static let bad: [Bad] = [
    Bad(name: "no tensor_names", metadata: ["a.weight": int8], code: .tensorNames),
    Bad(name: "tensor_names not JSON", metadata: ["tensor_names": "[a", "a.weight": int8], code: .tensorNames),
    Bad(name: "tensor_names empty", metadata: ["tensor_names": "[]"], code: .tensorNames),
    Bad(name: "tensor_names not strings", metadata: ["tensor_names": "[1]"], code: .tensorNames),
    Bad(
      name: "tensor_names names a missing entry",
      metadata: ["tensor_names": #"["a.weight", "b.weight"]"#, "a.weight": int8],
      code: .tensorNames, tensor: "b.weight"),
    Bad(
      name: "unknown subclass",
      metadata: [
        "tensor_names": #"["a.weight"]"#, "a.weight": int8.replacingOccurrences(of: "Int8Tensor", with: "os.system"),
      ],
      code: .unknownType, tensor: "a.weight"),
    Bad(
      name: "unknown nested type",
      metadata: [
        "tensor_names": #"["a.weight"]"#,
        "a.weight": int8.replacingOccurrences(of: "torch.dtype", with: "subprocess.Popen"),
      ],
      code: .unknownType, tensor: "a.weight"),
    Bad(
      name: "entry not JSON", metadata: ["tensor_names": #"["a.weight"]"#, "a.weight": "{"], code: .malformedEntry,
      tensor: "a.weight"),
    Bad(
      name: "entry without _type", metadata: ["tensor_names": #"["a.weight"]"#, "a.weight": "{}"],
      code: .malformedEntry, tensor: "a.weight"),
    Bad(
      name: "subclass without _data",
      metadata: [
        "tensor_names": #"["a.weight"]"#, "a.weight": #"{"_type": "Int8Tensor", "_tensor_data_names": ["qdata"]}"#,
      ],
      code: .malformedEntry, tensor: "a.weight"),
    Bad(
      name: "subclass without part names",
      metadata: ["tensor_names": #"["a.weight"]"#, "a.weight": #"{"_type": "Int8Tensor", "_data": {}}"#],
      code: .malformedEntry, tensor: "a.weight"),
  ]

  @Test(arguments: bad)
  func badMetadataIsRefusedWithItsRule(_ bad: Bad) {
    let error = #expect(throws: TorchAOError.self) { try TorchAOMetadata(decoding: bad.metadata) }
    #expect(error?.code == bad.code)
    if let tensor = bad.tensor { #expect(error?.tensor == tensor) }
  }
}
