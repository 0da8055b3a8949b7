import Quantization
import SafeTensors
import TorchAO

extension Recipe {
  /// Whether the recipe quantizes anything: it has a default config or a rule that quantizes
  /// (`reshard` does not).
  public var quantizes: Bool {
    defaultConfig != nil
      || rules.contains {
        if case .quantize = $0.action { return true }
        return false
      }
  }

  /// Whether the recipe reads a quantized input (FP8 block-scaled, compressed-tensors FP8, MXFP4,
  /// torchao) as its dequantized values (``Checkpoint/input(at:dequantizing:)``): when it
  /// quantizes, or says `dequantize: true`. `reshard` copies such an input as it is.
  public var dequantizesInput: Bool { quantizes || dequantizes }

  /// What this recipe does with the model parameter `name` (transformers' in-memory name) of
  /// `shape` and `dtype`: quantize it, and with which config, or keep it unchanged, and why.
  ///
  /// The rule that decides is found as torchao's `FqnToConfig` finds its key
  /// (``matchingRule(for:)``). `skip` keeps the parameter; `quantize` quantizes it if it is a
  /// BF16, F16 or F32 tensor of at least 2 dimensions, whatever its name or `role` (so a rule can
  /// quantize an embedding, a router or 3-D routed experts, as `FqnToConfig` can), and refuses a
  /// 1-D one. Without a matching rule the default config (`_default`) applies to what
  /// transformers quantizes: the 2-D `.weight` of every nn.Linear layer. From the files alone
  /// that is every 2-D BF16/F16/F32 `*.weight` of role ``ParameterRole/standard`` except input
  /// embeddings (`embed_tokens`, `wte`, `wpe`, `word_embeddings`, `embed_in`, `embed_positions`,
  /// ...) and the output projection (`lm_head`, `embed_out`, `output`, `output_layer`), which
  /// transformers leaves plain by default; biases, norms, tensors of other ranks, routed experts
  /// and routers that are Parameters stay plain. A recipe without a default config (`reshard`)
  /// keeps everything no rule quantizes.
  ///
  /// Finally torchao's own rules for the config apply (``TorchAOConfig/decision(shape:source:)``):
  /// shapes it silently leaves plain are kept with its reason, shapes and dtypes it refuses throw.
  ///
  /// - Throws: `refused` when torchao refuses the tensor (for example float8 dynamic per-row on
  ///   an F16 weight), or a rule would quantize a 1-D tensor, naming the tensor, the config and
  ///   the reason.
  public func selection(name: String, shape: [Int], dtype: DType, role: ParameterRole = .standard)
    throws(RecipeError) -> Selection
  {
    if let rule = matchingRule(for: name) {
      switch rule.action {
      case .skip: return .keep(reason: "skipped by rule '\(rule.pattern)'")
      case .quantize(let config):
        guard shape.count >= 2 else {
          throw RecipeError(
            .refused,
            "rule '\(rule.pattern)' of recipe '\(self.name)' would quantize this \(shape.count)-D tensor "
              + "(torchao quantizes weights of 2 or 3 dimensions); narrow the rule, e.g. to names ending in '.weight'",
            tensor: name)
        }
        return try select(config, name: name, shape: shape, dtype: dtype, byRule: true)
      }
    }
    guard let defaultConfig else {
      return .keep(reason: rules.isEmpty ? "reshard" : "no rule quantizes it and the recipe has no default quantize")
    }
    switch role {
    case .standard: return try select(defaultConfig, name: name, shape: shape, dtype: dtype, byRule: false)
    case .routedExperts:
      return .keep(reason: "routed experts (an nn.Parameter: only a rule quantizes them, as FqnToConfig does)")
    case .router: return .keep(reason: "router (an nn.Parameter, not an nn.Linear)")
    }
  }

  /// The rule that decides for the parameter `name`, found as torchao's `FqnToConfig` finds its
  /// key: a rule naming the parameter exactly, then one naming its module (`name` up to its last
  /// dot) exactly, then the first pattern that matches the parameter, then the first that
  /// matches its module; `nil` when none does (the default applies).
  public func matchingRule(for name: String) -> Rule? {
    let module = name.lastIndex(of: ".").map { String(name[..<$0]) }
    let exact = rules.filter(\.pattern.isExactName)
    let patterns = rules.filter { !$0.pattern.isExactName }
    return exact.first { $0.pattern.text == name }
      ?? module.flatMap { module in exact.first { $0.pattern.text == module } }
      ?? patterns.first { $0.pattern.matches(name) }
      ?? module.flatMap { module in patterns.first { $0.pattern.matches(module) } }
  }

  /// The `quantization_config` transformers writes for this recipe: its default config's, or,
  /// when a rule quantizes, torchao's `FqnToConfig` of `_default` (the default config) and each
  /// rule's key (``TensorPattern/fqnKey``) with its config (`null` for `skip`); `ruleConfigs`
  /// gives, by rule index, the config a rule quantized with where it differs from its own
  /// (experts quantized along another axis). `nil` for a recipe that quantizes nothing.
  func transformersQuantizationConfig(ruleConfigs: [Int: TorchAOConfig]) -> JSONValue? {
    guard rules.contains(where: { if case .quantize = $0.action { true } else { false } }) else {
      return defaultConfig?.transformersQuantizationConfig
    }
    var configs: [(key: String, config: TorchAOConfig?)] = defaultConfig.map { [("_default", $0)] } ?? []
    for (index, rule) in rules.enumerated() {
      switch rule.action {
      case .skip: configs.append((rule.pattern.fqnKey, nil))
      case .quantize(let config): configs.append((rule.pattern.fqnKey, ruleConfigs[index] ?? config))
      }
    }
    return TorchAOConfig.transformersQuantizationConfig(quantType: TorchAOConfig.fqnToConfigDict(configs))
  }

  /// The last module names of nn.Embedding weights in common decoder models.
  private static let embeddingModules: Set<Substring> = [
    "embed_tokens", "embed_in", "embed_positions", "wte", "wpe", "word_embeddings", "position_embeddings",
    "position_embedding", "token_type_embeddings", "tok_embeddings", "embedding", "embeddings", "shared",
  ]

  /// The last module names of output projections that transformers keeps plain by default.
  private static let outputModules: Set<Substring> = ["lm_head", "embed_out", "output", "output_layer"]

  /// The selection of one tensor under `config`: the default's candidate checks unless a rule
  /// chose the config, then torchao's own decision.
  private func select(_ config: TorchAOConfig, name: String, shape: [Int], dtype: DType, byRule: Bool)
    throws(RecipeError) -> Selection
  {
    guard let format = FloatFormat(rawValue: dtype.rawValue) else {
      return .keep(reason: "not a BF16/F16/F32 tensor (\(dtype.rawValue))")
    }
    guard shape.count >= 2 else { return .keep(reason: "bias/norm (not 2-D)") }
    if !byRule {
      guard shape.count == 2 else {
        return .keep(reason: "\(shape.count)-D (transformers quantizes only nn.Linear weights; a rule can quantize it)")
      }
      guard name.hasSuffix(".weight") else {
        return .keep(reason: "not a .weight (transformers quantizes only nn.Linear weights)")
      }
      // The last non-empty dot-separated component before ".weight", found without splitting
      // the whole name (a 100 000-tensor plan asks once a tensor).
      var stem = name.utf8.dropLast(".weight".utf8.count)
      while stem.last == UInt8(ascii: ".") { stem = stem.dropLast() }
      let module = Substring(
        stem[(stem.lastIndex(of: UInt8(ascii: ".")).map(stem.index(after:)) ?? stem.startIndex)...])
      if Self.embeddingModules.contains(module) { return .keep(reason: "embedding") }
      if Self.outputModules.contains(module) {
        return .keep(reason: "lm_head (transformers keeps the output projection)")
      }
    }
    do {
      switch try config.decision(shape: shape, source: format) {
      case .quantize: return .quantize(config)
      case .keep(let reason): return .keep(reason: reason)
      }
    } catch {
      let configName = config.configDict["_type"]?.string ?? "the config"
      throw RecipeError(
        .refused,
        "recipe '\(self.name)' uses torchao's \(configName), which refuses this \(dtype.rawValue) \(shape) weight: "
          + "\(error.message); skip it with a rule (skip: true) or choose a scheme that takes it",
        tensor: name)
    }
  }
}
