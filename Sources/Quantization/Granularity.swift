/// Which elements share one scale: torchao's `PerRow`, `PerTensor` and `PerGroup` (and intx's
/// `PerAxis(0)`, which is ``perRow``).
public enum Granularity: Sendable, Hashable {
  /// One scale per row of the last dimension: block `[1, K]` (`[1, 1, K]` for 3-D).
  case perRow
  /// One scale for the whole tensor: block = the weight shape.
  case perTensor
  /// One scale per `groupSize` consecutive elements of a row: block `[1, g]`.
  case perGroup(Int)
}
