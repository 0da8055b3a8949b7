import TorchAO

extension ConversionPlan {
  /// The config that quantizes the routed experts `parameter` when a rule asks for `config`.
  ///
  /// Per-tensor granularity is refused: on fused experts it gives one scale for every expert,
  /// gate and up together (moe.md §5.2). Experts stored `[E, in, out]` (gpt-oss, Llama 4) are
  /// quantized along their output channels, as torchao's own Llama 4 recipe does: float8 per-row
  /// becomes torchao's `PerRow(1)`; every other config would scale along the input channels and is
  /// refused.
  ///
  /// - Throws: `unsupported`, saying why.
  static func expertConfig(_ config: TorchAOConfig, for parameter: ModelParameter) throws(TorchAOError)
    -> TorchAOConfig
  {
    switch config {
    case .int8WeightOnly(.perTensor), .int8Dynamic(.perTensor, _, _), .float8WeightOnly(.perTensor),
      .float8Dynamic(.perTensor):
      throw TorchAOError(
        .unsupported,
        "per-tensor granularity on fused experts gives one scale to all \(parameter.shape[0]) experts (gate and up "
          + "together); quantize experts per row")
    default:
      break
    }
    guard parameter.isTransposed else { return config }
    switch config {
    case .float8WeightOnly(.perRow): return .float8WeightOnly(.perColumn)
    case .float8Dynamic(.perRow): return .float8Dynamic(.perColumn)
    default:
      throw TorchAOError(
        .unsupported,
        "these experts are stored [E, in, out] (\(parameter.shape)); only float8 per-row quantizes them along "
          + "their output channels (torchao's PerRow(1)), \(config.configDict["_type"]?.string ?? "this config") would scale along the input channels"
      )
    }
  }

  /// Refuses two quantized parameters of one module where one name is the other's plus `_…`
  /// (gpt-oss `gate_up_proj` and `gate_up_proj_bias`): torchao's loader collects the parts of the
  /// longer under the shorter's prefix and fails (moe.md §5.3).
  ///
  /// - Throws: `invalidInput` naming both.
  static func checkPrefixCollisions(_ names: [String]) throws(PipelineError) {
    let quantized = Set(names)
    for longer in names {
      let parameter = longer.lastIndex(of: ".") ?? longer.startIndex
      for index in longer[parameter...].indices
      where longer[index] == "_" && quantized.contains(String(longer[..<index])) {
        throw PipelineError(
          .invalidInput,
          "tensors '\(longer[..<index])' and '\(longer)' would both be quantized, and torchao's loader reads the parts "
            + "of the second as parts of the first (its name plus \"_…\"); keep one of them plain with a rule (skip: true)",
          tensor: longer)
      }
    }
  }
}
