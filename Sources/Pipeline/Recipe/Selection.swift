import TorchAO

/// What a recipe does with one input tensor (``Recipe/selection(name:shape:dtype:)``).
public enum Selection: Sendable, Hashable {
  /// Quantize it with this config.
  case quantize(TorchAOConfig)
  /// Copy it unchanged; the reason is a short phrase for people (`safeshard plan` shows it).
  case keep(reason: String)
}

/// What a model parameter is to transformers, beyond its name and shape: it decides whether a
/// recipe's default config (torchao's `_default`, which takes nn.Linear weights only) applies.
public enum ParameterRole: Sendable, Hashable {
  /// Any parameter of a dense model, and the rest of a MoE model: nn.Linear weights are told
  /// from the others by name and shape.
  case standard
  /// The fused routed experts of a MoE block (`experts.gate_up_proj`, `experts.down_proj`), 3-D
  /// `nn.Parameter`s.
  case routedExperts
  /// A MoE router held as an `nn.Parameter`.
  case router
}
