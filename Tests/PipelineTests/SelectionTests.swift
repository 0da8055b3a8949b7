import Pipeline
import Quantization
import SafeTensors
import Testing
import TorchAO

@Suite struct SelectionTests {
  /// One tensor of a model file.
  struct Tensor: Sendable, CustomTestStringConvertible {
    var name: String
    var shape: [Int]
    var dtype: DType = .bf16
    var testDescription: String { name }
  }

  /// A tiny Llama with one layer (hidden 64, intermediate 128, vocab 256), a bias on q_proj, a
  /// fused 3-D expert tensor and non-float buffers: the names and shapes of its safetensors.
  static let llama: [Tensor] = [
    Tensor(name: "model.embed_tokens.weight", shape: [256, 64]),
    Tensor(name: "model.layers.0.input_layernorm.weight", shape: [64]),
    Tensor(name: "model.layers.0.self_attn.q_proj.weight", shape: [64, 64]),
    Tensor(name: "model.layers.0.self_attn.q_proj.bias", shape: [64]),
    Tensor(name: "model.layers.0.self_attn.k_proj.weight", shape: [32, 64]),
    Tensor(name: "model.layers.0.self_attn.v_proj.weight", shape: [32, 64]),
    Tensor(name: "model.layers.0.self_attn.o_proj.weight", shape: [64, 64]),
    Tensor(name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [16], dtype: .f32),
    Tensor(name: "model.layers.0.post_attention_layernorm.weight", shape: [64]),
    Tensor(name: "model.layers.0.mlp.gate_proj.weight", shape: [128, 64]),
    Tensor(name: "model.layers.0.mlp.up_proj.weight", shape: [128, 64]),
    Tensor(name: "model.layers.0.mlp.down_proj.weight", shape: [64, 128]),
    Tensor(name: "model.layers.0.mlp.experts.gate_up_proj", shape: [4, 256, 64]),
    Tensor(name: "model.layers.0.mlp.position_ids", shape: [1, 64], dtype: .i64),
    Tensor(name: "model.norm.weight", shape: [64]),
    Tensor(name: "lm_head.weight", shape: [256, 64]),
  ]

  /// The selection of every tensor of `tensors`, by name.
  static func selections(_ recipe: Recipe, _ tensors: [Tensor] = llama) throws -> [String: Selection] {
    var result: [String: Selection] = [:]
    for tensor in tensors {
      result[tensor.name] = try recipe.selection(name: tensor.name, shape: tensor.shape, dtype: tensor.dtype)
    }
    return result
  }

  static let linearWeights = [
    "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
    "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
    "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
  ]

  @Test func int8WeightOnlyQuantizesTheLinearWeightsAndKeepsTheRest() throws {
    let selected = try Self.selections(try Recipe.load("int8-weight-only"))
    let quantized = selected.filter { if case .quantize = $0.value { true } else { false } }
    #expect(Set(quantized.keys) == Set(Self.linearWeights))
    #expect(quantized.values.allSatisfy { $0 == .quantize(.int8WeightOnly(.perRow)) })
    #expect(selected["model.embed_tokens.weight"] == .keep(reason: "embedding"))
    #expect(selected["lm_head.weight"] == .keep(reason: "lm_head (transformers keeps the output projection)"))
    for plain in [
      "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.bias", "model.norm.weight",
      "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.rotary_emb.inv_freq",
    ] {
      #expect(selected[plain] == .keep(reason: "bias/norm (not 2-D)"), "\(plain)")
    }
    #expect(selected["model.layers.0.mlp.position_ids"] == .keep(reason: "not a BF16/F16/F32 tensor (I64)"))
    let expert = try #require(selected["model.layers.0.mlp.experts.gate_up_proj"])
    guard case .keep(let reason) = expert else {
      Issue.record("the 3-D expert tensor was quantized")
      return
    }
    #expect(reason.hasPrefix("3-D"))
  }

  @Test(arguments: [
    "transformer.wte.weight", "transformer.wpe.weight", "gpt_neox.embed_in.weight",
    "model.decoder.embed_positions.weight", "transformer.word_embeddings.weight",
  ])
  func otherEmbeddingNamesAreKept(name: String) throws {
    let recipe = try Recipe.load("int8-weight-only")
    #expect(try recipe.selection(name: name, shape: [128, 64], dtype: .bf16) == .keep(reason: "embedding"))
  }

  @Test(arguments: ["embed_out.weight", "gpt_neox.embed_out.weight", "output.weight", "language_model.lm_head.weight"])
  func otherOutputProjectionsAreKept(name: String) throws {
    let recipe = try Recipe.load("int8-weight-only")
    let selection = try recipe.selection(name: name, shape: [128, 64], dtype: .bf16)
    #expect(selection == .keep(reason: "lm_head (transformers keeps the output projection)"))
  }

  @Test func aTwoDimensionalTensorThatIsNotAWeightIsKept() throws {
    let recipe = try Recipe.load("int8-weight-only")
    let selection = try recipe.selection(name: "model.layers.0.attn.relative_bias", shape: [64, 64], dtype: .bf16)
    #expect(selection == .keep(reason: "not a .weight (transformers quantizes only nn.Linear weights)"))
  }

  @Test func float8DynamicKeepsAWeightWhoseKIsNotAMultipleOf16() throws {
    let recipe = try Recipe.load("float8-dynamic")
    var model = Self.llama
    model.append(Tensor(name: "model.layers.1.mlp.down_proj.weight", shape: [64, 40]))
    let selected = try Self.selections(recipe, model)
    #expect(selected["model.layers.0.mlp.down_proj.weight"] == .quantize(.float8Dynamic(.perRow)))
    let odd = try #require(selected["model.layers.1.mlp.down_proj.weight"])
    guard case .keep(let reason) = odd else {
      Issue.record("K = 40 was quantized")
      return
    }
    #expect(reason.contains("multiples of 16"))
  }

  @Test func float8DynamicPerRowRefusesFloat16WeightsNamingTheTensor() throws {
    let recipe = try Recipe.load("float8-dynamic")
    let error = #expect(throws: RecipeError.self) {
      try recipe.selection(name: "model.layers.0.mlp.up_proj.weight", shape: [128, 64], dtype: .f16)
    }
    #expect(error?.code == .refused)
    #expect(error?.tensor == "model.layers.0.mlp.up_proj.weight")
    let message = error?.description ?? ""
    #expect(message.contains("tensor 'model.layers.0.mlp.up_proj.weight'"))
    #expect(message.contains("Float8DynamicActivationFloat8WeightConfig"))
    #expect(message.contains("needs bfloat16 weights, these are float16"))
  }

  @Test func float8DynamicPerTensorTakesFloat16Weights() throws {
    let recipe = try Recipe.load("float8-dynamic-per-tensor")
    let selection = try recipe.selection(name: "model.layers.0.mlp.up_proj.weight", shape: [128, 64], dtype: .f16)
    #expect(selection == .quantize(.float8Dynamic(.perTensor)))
  }

  @Test func int4KeepsAWeightWhoseKIsNotAMultipleOfTheGroupSize() throws {
    let recipe = try Recipe.load("int4-weight-only")
    let even = try recipe.selection(name: "a.weight", shape: [64, 256], dtype: .bf16)
    #expect(even == .quantize(.int4WeightOnly(groupSize: 128)))
    let selection = try recipe.selection(name: "b.weight", shape: [64, 192], dtype: .bf16)
    guard case .keep(let reason) = selection else {
      Issue.record("K = 192 was quantized")
      return
    }
    #expect(reason.contains("group size 128"))
  }

  @Test func reshardKeepsEverything() throws {
    let selected = try Self.selections(try Recipe.load("reshard"))
    #expect(selected.count == Self.llama.count)
    #expect(selected.values.allSatisfy { $0 == .keep(reason: "reshard") })
  }

  static let ruled = """
    quantize: { scheme: int8-weight-only }
    rules:
      - match: "re:model\\\\.layers\\\\.\\\\d+\\\\.mlp\\\\.down_proj\\\\.weight"
        skip: true
      - match: "*.self_attn.?_proj.weight"
        quantize: { scheme: float8-weight-only }
      - match: "*.self_attn.q_proj.weight"
        skip: true
      - match: "re:.*embed_tokens\\\\.weight|.*experts\\\\.gate_up_proj"
        quantize: { scheme: float8-weight-only, granularity: per-tensor }
    """

  @Test func rulesSkipAndQuantizeBeforeTheDefaultAndTheFirstMatchWins() throws {
    let recipe = try Recipe(yaml: Self.ruled, file: "ruled.yaml")
    let selected = try Self.selections(recipe)
    let skip = #"skipped by rule 're:model\.layers\.\d+\.mlp\.down_proj\.weight'"#
    #expect(selected["model.layers.0.mlp.down_proj.weight"] == .keep(reason: skip))
    // The glob rule comes before the q_proj skip, so it wins.
    for name in ["q_proj", "k_proj", "v_proj", "o_proj"] {
      #expect(selected["model.layers.0.self_attn.\(name).weight"] == .quantize(.float8WeightOnly(.perRow)), "\(name)")
    }
    #expect(selected["model.layers.0.mlp.gate_proj.weight"] == .quantize(.int8WeightOnly(.perRow)))
    // A rule quantizes what the default leaves alone: the embedding and the 3-D expert tensor.
    #expect(selected["model.embed_tokens.weight"] == .quantize(.float8WeightOnly(.perTensor)))
    #expect(selected["model.layers.0.mlp.experts.gate_up_proj"] == .quantize(.float8WeightOnly(.perTensor)))
    #expect(selected["model.layers.0.self_attn.q_proj.bias"] == .keep(reason: "bias/norm (not 2-D)"))
    #expect(selected["lm_head.weight"] == .keep(reason: "lm_head (transformers keeps the output projection)"))
  }

  @Test func aRuleThatWouldQuantizeA1DTensorIsRefused() throws {
    let recipe = try Recipe(
      yaml: "quantize: { scheme: int8-weight-only }\nrules:\n  - match: \"*.bias\"\n    quantize: { scheme: nvfp4 }\n",
      file: "bias.yaml")
    let error = #expect(throws: RecipeError.self) {
      try recipe.selection(name: "model.layers.0.self_attn.q_proj.bias", shape: [64], dtype: .bf16)
    }
    #expect(error?.tensor == "model.layers.0.self_attn.q_proj.bias")
    #expect(error?.description.contains("would quantize this 1-D tensor") == true)
  }

  /// torchao's FqnToConfig order: the exact parameter, then the exact module, then the first
  /// pattern matching the parameter, then the first matching the module, then `_default`.
  @Test func anExactNameWinsOverAPatternAndAModuleNameOverTheDefault() throws {
    let yaml = """
      quantize: { scheme: int8-weight-only }
      rules:
        - match: "*.mlp.*"
          quantize: { scheme: float8-weight-only }
        - match: "model.layers.0.mlp.up_proj.weight"
          skip: true
        - match: "model.layers.0.self_attn.q_proj"
          quantize: { scheme: nvfp4 }
      """
    let recipe = try Recipe(yaml: yaml, file: "order.yaml")
    let up = try recipe.selection(name: "model.layers.0.mlp.up_proj.weight", shape: [128, 64], dtype: .bf16)
    #expect(up == .keep(reason: "skipped by rule 'model.layers.0.mlp.up_proj.weight'"))
    let down = try recipe.selection(name: "model.layers.0.mlp.down_proj.weight", shape: [64, 128], dtype: .bf16)
    #expect(down == .quantize(.float8WeightOnly(.perRow)))
    let q = try recipe.selection(name: "model.layers.0.self_attn.q_proj.weight", shape: [64, 64], dtype: .bf16)
    #expect(q == .quantize(.nvfp4WeightOnly(perTensorScale: true)))
    let k = try recipe.selection(name: "model.layers.0.self_attn.k_proj.weight", shape: [64, 64], dtype: .bf16)
    #expect(k == .quantize(.int8WeightOnly(.perRow)))
  }

  @Test func theDefaultLeavesRoutedExpertsAndParameterRoutersAlone() throws {
    let recipe = try Recipe.load("int8-weight-only")
    let experts = try recipe.selection(
      name: "model.layers.0.mlp.experts.gate_up_proj", shape: [4, 256, 128], dtype: .bf16, role: .routedExperts)
    #expect(
      experts == .keep(reason: "routed experts (an nn.Parameter: only a rule quantizes them, as FqnToConfig does)"))
    let router = try recipe.selection(
      name: "model.layers.0.mlp.gate.weight", shape: [4, 128], dtype: .bf16, role: .router)
    #expect(router == .keep(reason: "router (an nn.Parameter, not an nn.Linear)"))
    let ruled = try Recipe.load("int8-weight-only-experts")
    let fused = try ruled.selection(
      name: "model.layers.0.mlp.experts.gate_up_proj", shape: [4, 256, 128], dtype: .bf16, role: .routedExperts)
    #expect(fused == .quantize(.int8WeightOnly(.perRow)))
  }

  @Test func aRecipeWithOnlyRulesKeepsWhatNoRuleMatches() throws {
    let yaml = "rules:\n  - match: \"*.mlp.*\"\n    quantize: { scheme: nvfp4 }\n"
    let recipe = try Recipe(yaml: yaml, file: "only.yaml")
    #expect(
      try recipe.selection(name: "model.layers.0.mlp.up_proj.weight", shape: [128, 64], dtype: .bf16)
        == .quantize(.nvfp4WeightOnly(perTensorScale: true)))
    let selection = try recipe.selection(name: "model.layers.0.self_attn.q_proj.weight", shape: [64, 64], dtype: .bf16)
    #expect(selection == .keep(reason: "no rule quantizes it and the recipe has no default quantize"))
  }

  @Test(arguments: [
    ("*.mlp.*", "model.layers.0.mlp.up_proj.weight", true),
    ("*.mlp.*", "model.layers.0.mlp", false),
    ("model.layers.?.mlp.*", "model.layers.7.mlp.up_proj.weight", true),
    ("model.layers.?.mlp.*", "model.layers.17.mlp.up_proj.weight", false),
    ("lm_head.weight", "lm_head.weight", true),
    ("lm_head.weight", "model.lm_head.weight", false),
    ("*a*b*c", "xaybzc", true),
    ("*a*b*c", "xaybzcd", false),
    ("re:.*\\.mlp\\..*", "model.layers.0.mlp.up_proj.weight", true),
    ("re:mlp", "model.layers.0.mlp.up_proj.weight", false),
    ("re:model\\.layers\\.(1|2)\\..*", "model.layers.2.mlp.up_proj.weight", true),
    ("re:model\\.layers\\.(1|2)\\..*", "model.layers.12.mlp.up_proj.weight", false),
  ])
  func patternsMatchTheWholeName(pattern: String, name: String, matches: Bool) throws {
    #expect(try TensorPattern(pattern).matches(name) == matches)
  }
}
