import Quantization
import SafeTensors

/// How the memory budget is divided, derived from the plan and the options.
///
/// The budget (`--memory`) is split into:
/// - the fixed part, reserved once before any data moves and held for the whole run: the
///   ``WriteBlocks`` (``writeBuffers``), one buffer to read a spilled piece back into
///   (``readBackBytes``: pieces are at most ``largestPiece``) and the spill codec's scratch
///   (``spillScratchBytes``);
/// - ``workers`` × ``largestJob`` for the jobs in flight (chunks being read and quantized, and
///   pieces on their way to the writer);
/// - the rest, ``stagingLimit``, for pieces that wait in memory for their turn; past it they spill.
///
/// Freed mappings pooled by the budget live inside the same capacity and give way to any
/// reservation, so they take no share of their own.
public struct MemoryShare: Sendable, Equatable {
  /// Input bytes one chunk reads at most (a whole row or tile may need more).
  public var chunkBytes: Int
  /// The most one chunk job reserves, over every tensor of the plan.
  public var largestJob: Int
  /// The most one chunk job reserves but its read's scratch, over every tensor of the plan: a
  /// bound of every piece.
  public var largestPiece: Int
  /// Workers that run at once.
  public var workers: Int
  /// The most bytes staged in memory before pieces spill.
  public var stagingLimit: Int
  /// The size of each of the ``WriteBlocks/count`` blocks that carry output to the disk.
  public var writeBlockSize: Int

  /// The bytes of every write block.
  public var writeBuffers: Int { WriteBlocks.count * writeBlockSize }

  /// The bytes of the buffer a spilled piece is read back into: one, shared by the writers.
  public var readBackBytes: Int { PieceBuffer.footprint(largestPiece) }

  /// The scratch the spill codec allocates while it writes or reads one piece.
  public var spillScratchBytes: Int { SpillFile.scratchLength(pieceLength: largestPiece) }

  /// The part of the budget reserved for the whole run: write blocks, read-back buffer and spill
  /// scratch.
  public var fixedBytes: Int { writeBuffers + readBackBytes + spillScratchBytes }

  init(chunkBytes: Int, largestJob: Int, largestPiece: Int, workers: Int, stagingLimit: Int, writeBlockSize: Int) {
    self.chunkBytes = chunkBytes
    self.largestJob = largestJob
    self.largestPiece = largestPiece
    self.workers = workers
    self.stagingLimit = stagingLimit
    self.writeBlockSize = writeBlockSize
  }

  /// The division of `plan`'s budget for reading the checkpoint `files`, or a `budget` error
  /// when one job cannot fit.
  public init(plan: ConversionPlan, files: [SafeTensorsFile]) throws(PipelineError) {
    let options = plan.options
    let chunkBytes = max(4096, options.memory / (4 * (options.jobs + 1)))
    var (largest, largestPiece) = (0, 0)
    for entry in plan.entries {
      let (job, scratch) = Self.jobBytes(entry, chunkBytes: chunkBytes, files: files)
      largest = max(largest, job)
      largestPiece = max(largestPiece, job - scratch)
    }
    self.init(
      chunkBytes: chunkBytes, largestJob: largest, largestPiece: largestPiece, workers: 1, stagingLimit: 0,
      writeBlockSize: WriteBlocks.size(memory: options.memory))
    // Half the budget for jobs at most (the rest stages pieces), and never more than fit beside
    // the fixed part.
    workers = max(
      1, min(options.jobs, options.memory / 2 / max(largest, 1), (options.memory - fixedBytes) / max(largest, 1)))
    let needed = fixedBytes + workers * largest
    guard needed <= options.memory else {
      throw PipelineError(
        .budget,
        "--memory \(options.memory) is too small: one step needs \(largest) bytes and the run needs at least \(fixedBytes + largest) (write blocks, spill buffers and one step); raise --memory"
      )
    }
    stagingLimit = options.memory - needed
  }

  /// The bytes of `entry`'s whole-tensor statistic, 0 when its scheme has none.
  static func statisticBytes(_ entry: ConversionPlan.Entry) -> Int {
    guard let config = entry.config, let format = entry.format else { return 0 }
    return (try? config.scheme(source: format).makeStatistic(shape: entry.source.shape))??.byteCount ?? 0
  }

  /// The bytes one chunk job of `entry` reserves (its input rows, its read's scratch, its output
  /// pieces, and the parts that live for the whole tensor; for a copy, one chunk of its bytes and
  /// its read's scratch), and of those its read's scratch.
  static func jobBytes(
    _ entry: ConversionPlan.Entry, chunkBytes: Int, files: [SafeTensorsFile]
  ) -> (job: Int, scratch: Int) {
    guard let layout = entry.layout, let format = entry.format else {
      let count = copyChunkBytes(entry, chunkBytes: chunkBytes)
      let scratch = readScratchBytes(entry, count: count, files: files)
      return (
        PieceBuffer.inputFootprint(count, mapped: mapsInput(entry, count: count, files: files)) + scratch, scratch
      )
    }
    let chunking = ChunkPlan(entry: entry, layout: layout, format: format, chunkBytes: chunkBytes, files: files)
    return (chunking.largestJob, chunking.readScratchBytes)
  }

  /// The bytes of each chunk (the last may be less) a copied `entry` is read in: whole elements.
  static func copyChunkBytes(_ entry: ConversionPlan.Entry, chunkBytes: Int) -> Int {
    let width = max(1, entry.source.dtype.bitSize / 8)
    return min(max(width, chunkBytes / width * width), max(entry.source.byteCount, 1))
  }

  /// Whether chunks of `count` input bytes of `entry` are mapped from their file rather than read
  /// into buffers: the entry has one input, stored in a file that can be mapped
  /// (``SafeTensorsFile/isMappable``), and its chunks are large enough to be mapped buffers
  /// (``PieceBuffer/mappingThreshold``), for which a mapping's pages cost at most one page more.
  static func mapsInput(_ entry: ConversionPlan.Entry, count: Int, files: [SafeTensorsFile]) -> Bool {
    entry.inputs.count == 1 && count >= PieceBuffer.mappingThreshold && files[entry.inputs[0].file].isMappable
  }

  /// The footprint of the scratch a read of at most `count` bytes of `entry` works in (its
  /// inputs are read one after another, each from the start of the scratch): 0 unless an input
  /// file is presented (``SafeTensorsFile/scratchBytes(_:count:)``).
  static func readScratchBytes(_ entry: ConversionPlan.Entry, count: Int, files: [SafeTensorsFile]) -> Int {
    let bytes = entry.inputs.reduce(0) {
      max($0, files[$1.file].scratchBytes($1.tensor, count: min(count, $1.tensor.byteCount)))
    }
    return bytes == 0 ? 0 : PieceBuffer.footprint(bytes)
  }
}
