import Quantization
import SafeTensors

/// How a quantized tensor is cut into row chunks, and what one chunk job reserves: the one
/// place both the memory share (``MemoryShare/init(plan:files:)``) and the job that runs the
/// chunks take these numbers from, so the budget's arithmetic and its use cannot drift apart.
struct ChunkPlan {
  let layout: QuantizedLayout
  /// Input bytes of one row.
  let rowBytes: Int
  /// Rows per chunk: as many as fit in the chunk size, in whole tiles where the layout has them.
  let rowsPerChunk: Int
  /// The bytes of the scheme's whole-tensor statistic (``AbsMaxStatistic/byteCount``; 0 when it
  /// has none): the merged one lives while the tensor is quantized, and each chunk of the
  /// statistic pass gathers into a copy of its own.
  let statisticBytes: Int
  /// The footprint of the scratch a chunk's read works in beside its input buffer (0 unless the
  /// input is presented: dequantized, or gathered from a pickle's view).
  let readScratchBytes: Int
  /// Whether a chunk's input is mapped from its file rather than read into a buffer
  /// (``MemoryShare/mapsInput(_:count:files:)``).
  let mapsInput: Bool

  /// The chunks of `entry` of at most `chunkBytes` input bytes, read from `files`.
  init(
    entry: ConversionPlan.Entry, layout: QuantizedLayout, format: FloatFormat, chunkBytes: Int, files: [SafeTensorsFile]
  ) {
    self.layout = layout
    statisticBytes = MemoryShare.statisticBytes(entry)
    rowBytes = layout.rowLength * format.byteWidth
    let alignment = max(layout.rowAlignment, 1)
    let rows = max(alignment, (chunkBytes / max(rowBytes, 1)) / alignment * alignment)
    rowsPerChunk = min(rows, max(layout.rowCount, 1))
    readScratchBytes = MemoryShare.readScratchBytes(entry, count: rowsPerChunk * rowBytes, files: files)
    mapsInput = MemoryShare.mapsInput(entry, count: rowsPerChunk * rowBytes, files: files)
  }

  /// What a chunk of `rows` reserves for its input (``PieceBuffer/inputFootprint(_:mapped:)``) and
  /// its read's scratch.
  func inputBytes(_ rows: Range<Int>) -> Int {
    PieceBuffer.inputFootprint(rows.count * rowBytes, mapped: mapsInput) + readScratchBytes
  }

  /// The chunks, front to back.
  var chunks: [Range<Int>] {
    stride(from: 0, to: layout.rowCount, by: rowsPerChunk).map { $0..<min($0 + rowsPerChunk, layout.rowCount) }
  }

  /// The parts written chunk by chunk (row and tile placements).
  var rowParts: [PartLayout] {
    layout.parts.filter {
      switch $0.placement {
      case .rows, .tiles: true
      case .gathered, .tensor: false
      }
    }
  }

  /// What the parts that live for the whole tensor (gathered and per-tensor parts) reserve: the
  /// ``PieceBuffer/footprint(_:)`` of each.
  var wholeTensorBytes: Int {
    layout.parts.reduce(0) { total, part in
      switch part.placement {
      case .rows, .tiles: total
      case .gathered, .tensor: total + PieceBuffer.footprint(part.byteCount)
      }
    }
  }

  /// What the chunk of `rows` reserves: its input (``inputBytes(_:)``) and the footprint of each
  /// of its row and tile pieces.
  func chunkBytes(_ rows: Range<Int>) -> Int {
    inputBytes(rows)
      + rowParts.reduce(0) { $0 + PieceBuffer.footprint($1.byteRange(rows: rows).count) }
  }

  /// What a chunk of the statistic pass reserves: its input (``inputBytes(_:)``) and its copy of
  /// the statistic.
  func statisticChunkBytes(_ rows: Range<Int>) -> Int {
    inputBytes(rows) + statisticBytes
  }

  /// The most one job of this tensor holds at once: a full chunk, the whole-tensor parts and the
  /// statistic, or a chunk of the statistic pass with its copy (counted with the merged one).
  var largestJob: Int {
    let rows = 0..<min(rowsPerChunk, layout.rowCount)
    return max(chunkBytes(rows) + wholeTensorBytes, statisticChunkBytes(rows)) + statisticBytes
  }
}
