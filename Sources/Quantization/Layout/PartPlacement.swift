/// How a quantized part's bytes follow the input's rows, which decides what a chunk of rows
/// writes of it.
public enum PartPlacement: Sendable, Hashable {
  /// Row `r` of the input owns bytes `r·bytesPerRow ..< (r+1)·bytesPerRow` of the part: a chunk
  /// of rows writes one contiguous range.
  case rows(bytesPerRow: Int)
  /// Swizzled scales: each run of `rowsPerTile` input rows owns one contiguous `bytesPerTile`
  /// range, padding included; chunks hold whole tiles (the last one may be short).
  case tiles(rowsPerTile: Int, bytesPerTile: Int)
  /// The part's layout does not follow rows (Int4's transposed scales): every chunk writes its own
  /// elements into one buffer that holds the whole part. These parts are small.
  case gathered
  /// The part depends on a whole-tensor statistic only (a per-tensor scale): it is produced by
  /// ``QuantizationScheme/tensorParts(shape:statistic:)``, not by chunks.
  case tensor
}
