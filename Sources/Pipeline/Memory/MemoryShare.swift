import Quantization

/// How the memory budget is divided, derived from the plan and the options.
public struct MemoryShare: Sendable, Equatable {
  /// Input bytes one chunk reads at most (a whole row or tile may need more).
  public var chunkBytes: Int
  /// The most one chunk job reserves, over every tensor of the plan.
  public var largestJob: Int
  /// Workers that run at once.
  public var workers: Int
  /// The most bytes staged in memory before pieces spill.
  public var stagingLimit: Int
  /// The size of each of the ``WriteBlocks/count`` blocks that carry output to the disk.
  public var writeBlockSize: Int

  /// The bytes of every write block.
  public var writeBuffers: Int { WriteBlocks.count * writeBlockSize }

  init(chunkBytes: Int, largestJob: Int, workers: Int, stagingLimit: Int, writeBlockSize: Int) {
    self.chunkBytes = chunkBytes
    self.largestJob = largestJob
    self.workers = workers
    self.stagingLimit = stagingLimit
    self.writeBlockSize = writeBlockSize
  }

  /// The division of `plan`'s budget, or a `budget` error when one job cannot fit.
  public init(plan: ConversionPlan) throws(PipelineError) {
    let options = plan.options
    let chunkBytes = max(4096, options.memory / (4 * (options.jobs + 1)))
    var largest = 0
    for entry in plan.entries { largest = max(largest, Self.jobBytes(entry, chunkBytes: chunkBytes)) }
    let workers = max(1, min(options.jobs, (options.memory / 2) / max(largest, 1)))
    let writeBlockSize = WriteBlocks.size(memory: options.memory)
    // One more job's worth is kept back for reading a spilled piece back.
    let fixed = (workers + 1) * largest + WriteBlocks.count * writeBlockSize
    guard fixed <= options.memory else {
      throw PipelineError(
        .budget,
        "--memory \(options.memory) is too small: one step needs \(largest) bytes and the run needs at least \(2 * largest + WriteBlocks.count * writeBlockSize); raise --memory"
      )
    }
    self.init(
      chunkBytes: chunkBytes, largestJob: largest, workers: workers, stagingLimit: options.memory - fixed,
      writeBlockSize: writeBlockSize)
  }

  /// The bytes one chunk job of `entry` reserves: its input rows, its output pieces, and the
  /// parts that live for the whole tensor; for a copy, one chunk of its bytes.
  static func jobBytes(_ entry: ConversionPlan.Entry, chunkBytes: Int) -> Int {
    guard let layout = entry.layout, let format = entry.format else {
      return min(chunkBytes, max(entry.source.byteCount, 1))
    }
    return ChunkPlan(layout: layout, format: format, chunkBytes: chunkBytes).largestJob
  }
}
