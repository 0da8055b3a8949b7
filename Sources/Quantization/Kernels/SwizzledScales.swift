/// torchao's `to_blocked` layout for MX and NVFP4 block scales (the cuBLAS "blocked" layout).
///
/// The scales of a tensor form a matrix `S[R, C]` (R = all input rows, C = blocks per row),
/// zero-padded to `R' = 128·⌈R/128⌉` rows and `C' = 4·⌈C/4⌉` columns. Element `(r, c)` is stored
/// at `((r/128)·(C'/4) + c/4)·512 + (r%32)·16 + ((r%128)/32)·4 + c%4`, so each 128-row tile of
/// rows owns `128·C'` contiguous bytes.
struct SwizzledScales: Hashable {
  /// Rows per tile.
  static let rowsPerTile = 128
  /// Scale columns (blocks per row) before padding.
  let columns: Int

  /// The padded column count `C'`.
  var paddedColumns: Int { (columns + 3) / 4 * 4 }
  /// The bytes of one 128-row tile.
  var bytesPerTile: Int { Self.rowsPerTile * paddedColumns }

  /// The stored shape for an input of `shape` (`[.., N, K]`), torchao's view of the padded
  /// matrix: `[.., ⌈N/128⌉·32, C'/4·16]`.
  func storedShape(for shape: [Int]) -> [Int] {
    let rows = shape[shape.count - 2]
    return shape.dropLast(2) + [(rows + 127) / 128 * 32, paddedColumns / 4 * 16]
  }

  /// The offset of scale `(row, column)` from the start of its row's tile.
  @inline(__always)
  func offsetInTile(row: Int, column: Int) -> Int {
    (column >> 2) &* 512 &+ (row & 31) &* 16 &+ ((row & 127) >> 5) &* 4 &+ (column & 3)
  }

  /// The offset of scale `(row, column)` from the start of the whole stored part.
  func offset(row: Int, column: Int) -> Int {
    (row / Self.rowsPerTile) * bytesPerTile + offsetInTile(row: row, column: column)
  }
}
