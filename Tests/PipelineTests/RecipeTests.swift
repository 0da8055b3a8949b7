import Foundation
import Pipeline
import Quantization
import SafeTensors
import Testing
import TorchAO

@Suite struct RecipeTests {
  /// torchao's `config_to_dict` for the config each built-in recipe stands for (SPEC §9.2, and
  /// `torchao_config` in the fixtures named in the comment of each recipe's test case).
  static let torchaoConfigDicts: [(String, String)] = [
    (
      "int8-weight-only",
      #"""
      {"_data": {"granularity": {"_data": {"dim": -1}, "_type": "PerRow", "_version": 1},
      "group_size": null, "set_inductor_config": true}, "_type": "Int8WeightOnlyConfig", "_version": 2}
      """#
    ),
    (
      "int8-dynamic",
      #"""
      {"_data": {"act_mapping_type": {"_data": "SYMMETRIC", "_type": "MappingType"},
      "granularity": {"_data": {"dim": -1}, "_type": "PerRow", "_version": 1}, "reduce_range": false,
      "set_inductor_config": true, "weight_only_decode": false},
      "_type": "Int8DynamicActivationInt8WeightConfig", "_version": 2}
      """#
    ),
    (
      "float8-weight-only",
      #"""
      {"_data": {"granularity": {"_data": {"dim": -1}, "_type": "PerRow", "_version": 1},
      "set_inductor_config": true, "weight_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"}},
      "_type": "Float8WeightOnlyConfig", "_version": 2}
      """#
    ),
    (
      "float8-dynamic",
      #"""
      {"_data": {"activation_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"},
      "activation_value_lb": null, "activation_value_ub": null, "alg_id": 0,
      "granularity": [{"_data": {"dim": -1}, "_type": "PerRow", "_version": 1}, {"_data": {"dim": -1},
      "_type": "PerRow", "_version": 1}], "kernel_preference": {"_data": "AUTO",
      "_type": "KernelPreference"}, "mm_config": {"_data": {"emulate": false, "pad_inner_dim": false,
      "use_fast_accum": true}, "_type": "Float8MMConfig", "_version": 1},
      "packing_format": {"_data": "PLAIN", "_type": "Float8PackingFormat"}, "set_inductor_config": true,
      "weight_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"}},
      "_type": "Float8DynamicActivationFloat8WeightConfig", "_version": 2}
      """#
    ),
    (
      "float8-dynamic-per-tensor",
      #"""
      {"_data": {"activation_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"},
      "activation_value_lb": null, "activation_value_ub": null, "alg_id": 0,
      "granularity": [{"_data": {}, "_type": "PerTensor", "_version": 1}, {"_data": {},
      "_type": "PerTensor", "_version": 1}], "kernel_preference": {"_data": "AUTO",
      "_type": "KernelPreference"}, "mm_config": {"_data": {"emulate": false, "pad_inner_dim": false,
      "use_fast_accum": true}, "_type": "Float8MMConfig", "_version": 1},
      "packing_format": {"_data": "PLAIN", "_type": "Float8PackingFormat"}, "set_inductor_config": true,
      "weight_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"}},
      "_type": "Float8DynamicActivationFloat8WeightConfig", "_version": 2}
      """#
    ),
    (
      "intx-weight-only-int4",
      #"""
      {"_data": {"granularity": {"_data": {"group_size": 32}, "_type": "PerGroup", "_version": 1},
      "intx_choose_qparams_algorithm": {"_data": "AFFINE", "_type": "IntxChooseQParamsAlgorithm"},
      "intx_packing_format": {"_data": "UNPACKED_TO_INT8", "_type": "IntxPackingFormat"},
      "mapping_type": {"_data": "SYMMETRIC", "_type": "MappingType"}, "scale_dtype": null,
      "weight_dtype": {"_data": "int4", "_type": "torch.dtype"}}, "_type": "IntxWeightOnlyConfig",
      "_version": 2}
      """#
    ),
    (
      "int8-dynamic-intx-int4",
      #"""
      {"_data": {"act_mapping_type": {"_data": "ASYMMETRIC", "_type": "MappingType"},
      "intx_choose_qparams_algorithm": {"_data": "AFFINE", "_type": "IntxChooseQParamsAlgorithm"},
      "intx_packing_format": {"_data": "UNPACKED_TO_INT8", "_type": "IntxPackingFormat"},
      "weight_dtype": {"_data": "int4", "_type": "torch.dtype"},
      "weight_granularity": {"_data": {"group_size": 32}, "_type": "PerGroup", "_version": 1},
      "weight_mapping_type": {"_data": "SYMMETRIC", "_type": "MappingType"}, "weight_scale_dtype": null},
      "_type": "Int8DynamicActivationIntxWeightConfig", "_version": 2}
      """#
    ),
    (
      "int4-weight-only",
      #"""
      {"_data": {"group_size": 128, "int4_choose_qparams_algorithm": {"_data": "TINYGEMM",
      "_type": "Int4ChooseQParamsAlgorithm"}, "int4_packing_format": {"_data": "PLAIN",
      "_type": "Int4PackingFormat"}, "int4_tile_packed_ntile": 8, "set_inductor_config": true},
      "_type": "Int4WeightOnlyConfig", "_version": 2}
      """#
    ),
    (
      "mxfp8",
      #"""
      {"_data": {"activation_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"},
      "block_size": 32, "kernel_preference": {"_data": "AUTO", "_type": "KernelPreference"},
      "scaling_mode": {"_data": "RCEIL", "_type": "ScaleCalculationMode"},
      "weight_dtype": {"_data": "float8_e4m3fn", "_type": "torch.dtype"}},
      "_type": "MXDynamicActivationMXWeightConfig", "_version": 1}
      """#
    ),
    (
      "mxfp4",
      #"""
      {"_data": {"activation_dtype": {"_data": "float4_e2m1fn_x2", "_type": "torch.dtype"},
      "block_size": 32, "kernel_preference": {"_data": "AUTO", "_type": "KernelPreference"},
      "scaling_mode": {"_data": "RCEIL", "_type": "ScaleCalculationMode"},
      "weight_dtype": {"_data": "float4_e2m1fn_x2", "_type": "torch.dtype"}},
      "_type": "MXDynamicActivationMXWeightConfig", "_version": 1}
      """#
    ),
    (
      "nvfp4",
      #"""
      {"_data": {"use_dynamic_per_tensor_scale": true}, "_type": "NVFP4WeightOnlyConfig", "_version": 1}
      """#
    ),
    (
      "nvfp4-dynamic",
      #"""
      {"_data": {"step": null, "use_dynamic_per_tensor_scale": true, "use_triton_kernel": true},
      "_type": "NVFP4DynamicActivationNVFP4WeightConfig", "_version": 1}
      """#
    ),
  ]

  static let builtinNames = [
    "dequantize", "float8-dynamic", "float8-dynamic-experts", "float8-dynamic-per-tensor", "float8-weight-only",
    "float8-weight-only-experts", "int4-weight-only", "int4-weight-only-experts", "int8-dynamic",
    "int8-dynamic-intx-int4", "int8-weight-only", "int8-weight-only-experts", "intx-weight-only-int4", "mxfp4", "mxfp8",
    "nvfp4", "nvfp4-dynamic", "reshard",
  ]

  /// The repository's `Pipelines/` folder, found from this file.
  static let pipelinesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Pipelines")

  @Test func theEighteenBuiltInRecipesAreThere() {
    #expect(Recipe.builtinNames == Self.builtinNames)
  }

  @Test(arguments: builtinNames)
  func eachBuiltInRecipeParsesAndIsNamedAfterItsFile(name: String) throws {
    let recipe = try Recipe.load(name)
    #expect(recipe.name == name)
    // The -experts recipes add one rule: the routed experts, with the default's scheme.
    if name.hasSuffix("-experts") {
      #expect(recipe.rules.map(\.pattern.text) == [#"re:.*\.experts\.(gate_up_proj|down_proj)"#])
      #expect(recipe.rules.first?.action == .quantize(try #require(recipe.defaultConfig)))
    } else {
      #expect(recipe.rules.isEmpty)
    }
    #expect(recipe.maxShardSize == nil && recipe.memoryBudget == nil)
    #expect(recipe.spillCompression == nil && recipe.layout == nil)
    #expect((recipe.defaultConfig == nil) == ["reshard", "dequantize"].contains(name))
    // Every recipe but reshard reads an FP8 input as its bfloat16 values.
    #expect(recipe.dequantizesInput == (name != "reshard"))
  }

  @Test(arguments: torchaoConfigDicts)
  func eachBuiltInRecipeWritesTorchaosConfigDict(name: String, expectedJSON: String) throws {
    let expected = try JSONParser.parse(expectedJSON)
    let config = try #require(try Recipe.load(name).defaultConfig)
    #expect(config.configDict == expected, "\(JSONWriter.string(config.configDict))")
    #expect(try TorchAOConfig(configDict: expected) == config)
  }

  @Test func theEmbeddedRecipesAreTheFilesInPipelines() throws {
    let files = try FileManager.default.contentsOfDirectory(atPath: Self.pipelinesFolder.path)
      .filter { $0.hasSuffix(".yaml") }
    let names = files.map { String($0.dropLast(".yaml".count)) }.sorted()
    #expect(names == Recipe.builtinNames, "run scripts/embed-recipes.sh")
    for name in names {
      let text = try String(contentsOf: Self.pipelinesFolder.appendingPathComponent("\(name).yaml"), encoding: .utf8)
      #expect(Recipe.builtinSources[name] == text, "Pipelines/\(name).yaml changed; run scripts/embed-recipes.sh")
    }
  }

  @Test func aRecipeWithEveryKeyParses() throws {
    let recipe = try Recipe(
      yaml: #"""
        name: custom
        quantize:
          scheme: intx-weight-only
          bits: 3
          granularity: per-group:64
          mapping: asymmetric
          scale-dtype: float32
        rules:
          - match: "re:.*\\.mlp\\.down_proj\\.weight"
            skip: true
          - match: "*.self_attn.*"
            quantize: { scheme: float8-weight-only, granularity: per-tensor }
        shard: { max-size: 5GB, layout: canonical }
        memory: { budget: 1.5GiB, spill-compression: none }
        """#, file: "custom.yaml")
    #expect(recipe.name == "custom")
    #expect(recipe.defaultConfig == .intxWeightOnly(bits: 3, .perGroup(64), mapping: .asymmetric, scaleFormat: .fp32))
    #expect(recipe.rules.map(\.pattern.text) == [#"re:.*\.mlp\.down_proj\.weight"#, "*.self_attn.*"])
    #expect(recipe.rules.map(\.action) == [.skip, .quantize(.float8WeightOnly(.perTensor))])
    #expect(recipe.maxShardSize == 5_000_000_000)
    #expect(recipe.layout == .canonical)
    #expect(recipe.memoryBudget == 1_610_612_736)
    #expect(recipe.spillCompression == SpillCompression.none)
  }

  @Test func aRecipeWithoutNameIsNamedAfterItsFile() throws {
    let recipe = try Recipe(yaml: "quantize: { scheme: nvfp4 }\n", file: "/tmp/recipes/my.nvfp4.yaml")
    #expect(recipe.name == "my.nvfp4")
    #expect(recipe.defaultConfig == .nvfp4WeightOnly(perTensorScale: true))
  }

  @Test(arguments: [
    ("scheme: int8-weight-only", TorchAOConfig.int8WeightOnly(.perRow)),
    ("scheme: int8-dynamic", .int8Dynamic(.perRow, activationMapping: .symmetric, reduceRange: false)),
    ("scheme: float8-weight-only", .float8WeightOnly(.perRow)),
    ("scheme: float8-dynamic", .float8Dynamic(.perTensor)),
    ("scheme: intx-weight-only", .intxWeightOnly(bits: 8, .perRow, mapping: .symmetric, scaleFormat: nil)),
    ("scheme: int8-dynamic-intx", .int8DynamicIntx(bits: 8, .perGroup(32), mapping: .symmetric, scaleFormat: nil)),
    ("scheme: int4-weight-only", .int4WeightOnly(groupSize: 128)),
    ("scheme: mx", .mx(.float8E4M3, .rceil)),
    ("scheme: nvfp4", .nvfp4WeightOnly(perTensorScale: true)),
    ("scheme: nvfp4-dynamic", .nvfp4Dynamic(perTensorScale: true)),
  ])
  func leftOutParametersTakeTorchaosDefaults(quantize: String, expected: TorchAOConfig) throws {
    let recipe = try Recipe(yaml: "quantize: { \(quantize) }", file: "defaults.yaml")
    #expect(recipe.defaultConfig == expected)
  }

  @Test(arguments: [
    (
      "{ scheme: int8-dynamic, granularity: per-tensor, activation-mapping: asymmetric, reduce-range: true }",
      TorchAOConfig.int8Dynamic(.perTensor, activationMapping: .asymmetric, reduceRange: true)
    ),
    ("{ scheme: int8-weight-only, granularity: per-group:32 }", .int8WeightOnly(.perGroup(32))),
    (
      "{ scheme: int8-dynamic-intx, bits: 1, granularity: per-row, mapping: symmetric-no-clipping-error, "
        + "scale-dtype: bfloat16 }",
      .int8DynamicIntx(bits: 1, .perRow, mapping: .symmetricNoClippingError, scaleFormat: .bf16)
    ),
    ("{ scheme: int4-weight-only, group-size: 32 }", .int4WeightOnly(groupSize: 32)),
    ("{ scheme: mx, element: fp4, scaling: floor }", .mx(.float4E2M1, .floor)),
    ("{ scheme: nvfp4-dynamic, per-tensor-scale: false }", .nvfp4Dynamic(perTensorScale: false)),
  ])
  func schemeParametersReachTheConfig(quantize: String, expected: TorchAOConfig) throws {
    let recipe = try Recipe(yaml: "quantize: \(quantize)", file: "parameters.yaml")
    #expect(recipe.defaultConfig == expected)
  }

  /// A recipe that must be refused, the rule it breaks, the key path the error names and a
  /// phrase its message must contain.
  struct Malformed: Sendable, CustomTestStringConvertible {
    var yaml: String
    var code: RecipeError.Code
    var keyPath: String?
    var mentions: String
    var testDescription: String { "\(code.rawValue) at \(keyPath ?? "(root)")" }
  }

  static let malformed: [Malformed] = [
    Malformed(
      yaml: "name: x\nquantise: { scheme: nvfp4 }\n", code: .unknownKey, keyPath: "quantise",
      mentions: "name, dequantize, quantize, rules, shard, memory"),
    Malformed(
      yaml: "quantize: { scheme: int8-weight-only, bits: 4 }\n", code: .unknownKey, keyPath: "quantize.bits",
      mentions: "scheme int8-weight-only allows scheme, granularity"),
    Malformed(
      yaml: "shard: { max-size: 5GB, lay-out: input }\n", code: .unknownKey, keyPath: "shard.lay-out",
      mentions: "max-size, layout"),
    Malformed(
      yaml: "rules: { match: x, skip: true }\n", code: .wrongType, keyPath: "rules",
      mentions: "expected a list of rules, found a mapping"),
    Malformed(
      yaml: "quantize: { scheme: intx-weight-only, bits: \"4\" }\n", code: .wrongType, keyPath: "quantize.bits",
      mentions: "expected an integer, found the string '4'"),
    Malformed(
      yaml: "quantize: { scheme: nvfp4, per-tensor-scale: 1 }\n", code: .wrongType,
      keyPath: "quantize.per-tensor-scale", mentions: "expected true or false"),
    Malformed(yaml: "quantize: int8-weight-only\n", code: .wrongType, keyPath: "quantize", mentions: "a mapping"),
    Malformed(
      yaml: "quantize: { scheme: int9-weight-only }\n", code: .invalidValue, keyPath: "quantize.scheme",
      mentions: "int8-weight-only, int8-dynamic, float8-weight-only"),
    Malformed(
      yaml: "quantize: { granularity: per-row }\n", code: .missingKey, keyPath: "quantize", mentions: "needs a scheme"),
    Malformed(
      yaml: "rules:\n  - match: \"re:model\\\\.(layers\"\n    skip: true\n", code: .invalidValue,
      keyPath: "rules[0].match", mentions: "invalid regex"),
    Malformed(
      yaml: "rules:\n  - match: \"\"\n    skip: true\n", code: .invalidValue, keyPath: "rules[0].match",
      mentions: "empty"),
    Malformed(
      yaml: "rules:\n  - skip: true\n", code: .missingKey, keyPath: "rules[0]", mentions: "needs match"),
    Malformed(
      yaml: "rules:\n  - match: \"*\"\n    skip: true\n    quantize: { scheme: nvfp4 }\n", code: .missingKey,
      keyPath: "rules[0]", mentions: "exactly one of skip"),
    Malformed(
      yaml: "rules:\n  - match: \"*\"\n    skip: false\n", code: .invalidValue, keyPath: "rules[0].skip",
      mentions: "skip must be true"),
    Malformed(
      yaml: "rules:\n  - match: \"*\"\n    quantize: { scheme: mx, element: fp6 }\n", code: .invalidValue,
      keyPath: "rules[0].quantize.element", mentions: "'fp6' is not one of fp8, fp4"),
    Malformed(
      yaml: "quantize: { scheme: int4-weight-only, group-size: 100 }\n", code: .invalidValue,
      keyPath: "quantize.group-size", mentions: "32, 64, 128, 256"),
    Malformed(
      yaml: "quantize: { scheme: intx-weight-only, granularity: per-group:0 }\n", code: .invalidValue,
      keyPath: "quantize.granularity", mentions: "positive integer"),
    Malformed(
      yaml: "quantize: { scheme: intx-weight-only, granularity: per-tensor }\n", code: .invalidValue,
      keyPath: "quantize.granularity", mentions: "use per-row, per-group:N"),
    Malformed(
      yaml: "quantize: { scheme: float8-dynamic, granularity: per-group:32 }\n", code: .invalidValue,
      keyPath: "quantize.granularity", mentions: "use per-row, per-tensor"),
    Malformed(
      yaml: "quantize: { scheme: int8-dynamic-intx, bits: 9 }\n", code: .invalidValue, keyPath: "quantize.bits",
      mentions: "1 to 8"),
    Malformed(
      yaml: "shard: { max-size: 5XB }\n", code: .invalidValue, keyPath: "shard.max-size",
      mentions: "unknown unit 'XB'"),
    Malformed(
      yaml: "memory: { budget: 0 }\n", code: .invalidValue, keyPath: "memory.budget", mentions: "at least 1 byte"),
    Malformed(
      yaml: "memory: { spill-compression: zstd }\n", code: .invalidValue, keyPath: "memory.spill-compression",
      mentions: "lz4, none"),
    Malformed(yaml: "name: [a, b]\n", code: .wrongType, keyPath: "name", mentions: "expected a string, found a list"),
    Malformed(yaml: "name: x\n  quantize: {\n", code: .syntax, keyPath: nil, mentions: "not valid YAML"),
    Malformed(yaml: "- int8-weight-only\n", code: .wrongType, keyPath: nil, mentions: "a mapping (a recipe)"),
  ]

  @Test(arguments: malformed)
  func aMalformedRecipeIsRefusedNamingTheKey(_ bad: Malformed) {
    let error = #expect(throws: RecipeError.self) { try Recipe(yaml: bad.yaml, file: "bad.yaml") }
    #expect(error?.code == bad.code)
    #expect(error?.keyPath == bad.keyPath)
    #expect(error?.file == "bad.yaml")
    #expect(error?.description.contains(bad.mentions) == true, "\(error.map(String.init(describing:)) ?? "")")
  }

  @Test func aliasesUsedAsKeysAreRefusedAtOnce() throws {
    // adversarial 2.3: nine levels of nine aliases used as mapping keys ran for hours inside the
    // YAML library's duplicate-key check.
    var yaml = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
    for (name, inner) in zip("bcdefghi", "abcdefgh") {
      yaml += "\(name): &\(name) [" + Array(repeating: "*\(inner)", count: 9).joined(separator: ",") + "]\n"
    }
    yaml += "j: {*i : 1, *h : 2}\nname: bomb\nquantize: {scheme: int8-weight-only}\n"
    // Refused before the YAML library sees it (a hang here would time the suite out).
    let error = #expect(throws: RecipeError.self) { try Recipe(yaml: yaml, file: "laughs-keys.yaml") }
    #expect(error?.code == .syntax && error?.line == 1)
    #expect(error?.description.contains("&a: a recipe takes no YAML anchors or aliases") == true)
  }

  @Test func starsAndAmpersandsInQuotesCommentsAndPlainScalarsAreNotAliases() throws {
    let yaml = """
      # *comment &x
      name: "a*b &c \\" *d"
      rules:
        - match: '*.mlp.* it''s *e'
          skip: true
        - match: re:a*b&c
          skip: true
      """
    let recipe = try Recipe(yaml: yaml, file: "ok.yaml")
    #expect(recipe.name == #"a*b &c " *d"#)
    #expect(recipe.rules.count == 2)
    let unquoted = #expect(throws: RecipeError.self) {
      try Recipe(yaml: "rules:\n  - match: *.mlp.*\n    skip: true\n", file: "glob.yaml")
    }
    #expect(unquoted?.line == 2 && unquoted?.description.contains("match: '*.mlp.*'") == true)
  }

  @Test func anErrorNamesTheFileAndLine() {
    let error = #expect(throws: RecipeError.self) {
      let yaml = "name: x\nquantize:\n  scheme: int8-weight-only\n  granularity: per-column\n"
      return try Recipe(yaml: yaml, file: "my.yaml")
    }
    #expect(
      error?.description
        == "my.yaml:4: quantize.granularity: 'per-column' is not a granularity this scheme offers; "
        + "use per-row, per-tensor, per-group:N")
  }

  @Test func anUnknownBuiltInNameListsTheBuiltInRecipes() {
    let error = #expect(throws: RecipeError.self) { try Recipe.load("int8") }
    #expect(error?.code == .notFound)
    #expect(error?.description.contains("int8-weight-only, int8-weight-only-experts, intx-weight-only-int4") == true)
  }

  @Test func aPathIsReadFromDisk() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("int8.yml")
    try Data("quantize: { scheme: int8-weight-only, granularity: per-tensor }\n".utf8).write(to: file)
    let recipe = try Recipe.load(file.path)
    #expect(recipe.name == "int8")
    #expect(recipe.defaultConfig == .int8WeightOnly(.perTensor))
  }

  @Test func aFolderIsNotARecipe() {
    let folder = FileManager.default.temporaryDirectory.path
    let error = #expect(throws: RecipeError.self) { try Recipe.load(folder + "/") }
    #expect(error?.code == .io)
    #expect(error?.description.contains("Is a directory") == true)
  }

  @Test func aMissingRecipeFileIsNotFound() {
    let error = #expect(throws: RecipeError.self) { try Recipe.load("/nonexistent/recipe.yaml") }
    #expect(error?.code == .notFound)
    #expect(error?.file == "/nonexistent/recipe.yaml")
  }
}
