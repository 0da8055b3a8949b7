import TorchAO

/// What a recipe does with one input tensor (``Recipe/selection(name:shape:dtype:)``).
public enum Selection: Sendable, Hashable {
  /// Quantize it with this config.
  case quantize(TorchAOConfig)
  /// Copy it unchanged; the reason is a short phrase for people (`safeshard plan` shows it).
  case keep(reason: String)
}
