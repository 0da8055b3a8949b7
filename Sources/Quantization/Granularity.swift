/// Which elements share one scale: torchao's `PerRow`, `PerTensor` and `PerGroup` (and intx's
/// `PerAxis(0)`, which is ``perRow``).
public enum Granularity: Sendable, Hashable {
  /// One scale per row of the last dimension: block `[1, K]` (`[1, 1, K]` for 3-D).
  case perRow
  /// One scale for the whole tensor: block = the weight shape.
  case perTensor
  /// One scale per `groupSize` consecutive elements of a row: block `[1, g]`.
  case perGroup(Int)
  /// torchao's `PerRow(1)` on a 3-D weight stored transposed, `[E, K, N]` (gpt-oss and Llama 4
  /// experts): one scale per column of each expert, over its K rows. Block `[1, K, 1]`, scale
  /// shape `[E, 1, N]`. Only ``Float8Scheme`` takes it, and only for 3-D weights.
  case perColumn
}
