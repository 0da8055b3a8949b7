import AsyncAlgorithms
import Foundation
import Quantization
import SafeTensors
import TorchAO

/// Runs a ``ConversionPlan``: reads the input by byte range, quantizes row chunks on several
/// workers, and hands the pieces to one ``ShardWriter`` per output shard, with every buffer
/// reserved from one ``MemoryBudget`` for as long as it exists (see ``MemoryShare`` for how the
/// budget is divided).
///
/// Tensors are taken in output order; within a tensor, up to ``MemoryShare/workers`` chunks are
/// read and quantized at once. Finished pieces travel through a channel buffered to
/// `2 × workers` pieces (a sender suspends while the buffer is full; the pieces in it hold their
/// reservations), so a slow disk slows the readers instead of growing memory. The first error
/// cancels everything; cancelling the task stops the run, leaving the state folder for the next
/// run.
///
/// The budget cannot deadlock because the run keeps the invariants ``MemoryBudget`` lists: the
/// writer side reserves nothing once pieces move (its write blocks, read-back buffer and spill
/// scratch are reserved first), staging stops at ``MemoryShare/stagingLimit`` so that the
/// workers' share is always left, and tensors run one after another, so only one job holds
/// whole-tensor bytes while it waits for chunk bytes.
public struct Converter: Sendable {
  /// The numbers of a finished run.
  public struct Report: Sendable {
    public var bytesWritten: Int
    public var shards: [String]
    /// The most bytes the run's buffers held at once (write blocks, spill buffers, chunks,
    /// pieces, staged pieces and pooled mappings), as the buffers themselves counted them.
    public var peakMemory: Int
    public var spilledBytes: Int
    /// Whether the output is complete (`false` for one worker of several).
    public var finalized: Bool
  }

  let checkpoint: Checkpoint
  let plan: ConversionPlan
  let output: OutputDirectory
  let inputDirectory: String?
  let progress: @Sendable (ProgressEvent) -> Void

  /// Prepares a run of `plan` from `checkpoint` into `output`.
  ///
  /// - Parameters:
  ///   - inputDirectory: the model directory whose other files (config, tokenizer) are copied;
  ///     `nil` for a single-file input.
  ///   - progress: called from any task with each ``ProgressEvent``.
  public init(
    checkpoint: Checkpoint, plan: ConversionPlan, output: OutputDirectory, inputDirectory: String?,
    progress: @escaping @Sendable (ProgressEvent) -> Void
  ) {
    self.checkpoint = checkpoint
    self.plan = plan
    self.output = output
    self.inputDirectory = inputDirectory
    self.progress = progress
  }

  /// Runs the conversion to the end.
  ///
  /// - Throws: ``PipelineError``; `cancelled` when the task was cancelled (a signal).
  public func run() async throws(PipelineError) -> Report {
    let share = try MemoryShare(plan: plan, files: checkpoint.files)
    let budget = MemoryBudget(capacity: plan.options.memory)
    let staging = StagingAccount(limit: share.stagingLimit)
    // The writer side's memory, reserved before any piece moves and held to the end (the share
    // has checked that it fits).
    guard var fixed = budget.tryReserve(share.fixedBytes) else {
      preconditionFailure("Invalid share: \(share.fixedBytes) fixed bytes do not fit in \(budget.capacity)")
    }
    let blocks = WriteBlocks(size: share.writeBlockSize, reservation: fixed.split(share.writeBuffers))
    let spillMemory = SpillMemory(
      readBack: PieceBuffer(count: share.largestPiece, reservation: fixed.split(share.readBackBytes)),
      scratchBytes: share.spillScratchBytes, gauge: budget.gauge)
    let spillFolder = output.spillFolder(worker: plan.options.workerIndex, in: plan.options.spillDirectory)
    defer { try? FileManager.default.removeItem(atPath: spillFolder) }
    // What this run still writes, decided once from every journal and the files on disk:
    // finished shards are kept, partial ones continue, and only the rest get a writer. These
    // reads, like the preflight's, block: they run on the I/O executor.
    let (state, journal) = try await BlockingIOExecutor.shared.execute { [self] () throws(PipelineError) in
      try preflight(spillFolder: spillFolder)
      return (
        RunState(plan: plan, output: output), try Journal(path: output.journalPath(worker: plan.options.workerIndex))
      )
    }
    // One thread for every writer: the consumer below hands them pieces one at a time anyway.
    let writerThread = SerialThreadExecutor(name: "safeshard-writer")
    var created: [Int: ShardWriter] = [:]
    for (index, shard) in plan.shards.enumerated() where state.starts[index].isWritten {
      let writer = ShardWriter(
        shard: shard, partialPath: output.partialPath(shard.fileName),
        finalPath: output.finishedPath(shard.fileName, shardCount: plan.shards.count), staging: staging,
        spillDirectory: spillFolder, spillCompression: plan.options.spillCompression, journal: journal,
        commitInterval: plan.options.commitInterval, blocks: blocks, spillMemory: spillMemory, executor: writerThread)
      if case .resume(let offset) = state.starts[index] { try await writer.resume(dataOffset: offset) }
      created[index] = writer
    }
    let writers = created
    let starts = state.starts
    let results = Locked(state.finished)
    let totalBytes = plan.shards.reduce(0) { $0 + $1.header.dataLength }
    let alreadyDone = zip(plan.shards, starts).reduce(0) { done, pair in
      switch pair.1 {
      case .fresh: done
      case .resume(let offset): done + offset
      case .finished, .notOwned: done + pair.0.header.dataLength
      }
    }
    progress(.started(totalBytes: totalBytes, shards: plan.shards.count))
    let spilled = Locked(0)
    do {
      let channel = AsyncChannel<Piece>()
      try await withThrowingDiscardingTaskGroup { group in
        group.addTask {
          var done = alreadyDone
          // A few pieces wait between the workers and the writer, so that a worker starts its next
          // chunk (or the next tensor) while the writer takes the last one; the budget still
          // bounds their bytes.
          for await piece in channel.buffer(policy: .bounded(2 * share.workers)) {
            guard let writer = writers[piece.shard] else {
              // `TensorJob.send` sends nothing for a shard this run does not write; a piece that
              // came anyway is dropped, and its buffer's reservation with it.
              continue
            }
            let receipt = try await writer.receive(piece)
            done += receipt.written
            if receipt.spilled > 0 { spilled.withLock { $0 += receipt.spilled } }
            if receipt.written > 0 { progress(.wrote(bytes: receipt.written, done: done)) }
            if let finished = receipt.finished {
              results.withLock { $0.append(finished) }
              progress(.shardFinished(fileName: finished.fileName, size: finished.size, sha256: finished.sha256))
            }
          }
        }
        group.addTask {
          defer { channel.finish() }
          try await produce(into: channel, budget: budget, share: share, starts: starts)
        }
      }
      for writer in writers.values {
        if let finished = try await writer.finishIfEmpty() {
          results.withLock { $0.append(finished) }
          progress(.shardFinished(fileName: finished.fileName, size: finished.size, sha256: finished.sha256))
        }
      }
    } catch {
      for writer in writers.values { await writer.abandon() }
      if error is CancellationError || Task.isCancelled {
        throw PipelineError(.cancelled, "stopped before the end")
      }
      if let error = error as? PipelineError { throw error }
      throw PipelineError(.io, "\(error)", cause: error)
    }
    // What is left of the fixed reservation is the spill scratch: held until no writer can spill.
    _ = consume fixed
    let finished = results.value
    let owned = plan.shards.indices.filter { plan.options.owns(shard: $0) }.map { plan.shards[$0].fileName }
    let completions = Dictionary(grouping: finished.map(\.fileName), by: { $0 })
    let missing = owned.filter { completions[$0] == nil }
    let twice = completions.filter { $0.value.count > 1 }.keys.sorted()
    guard missing.isEmpty, twice.isEmpty else {
      let what = [
        missing.isEmpty ? nil : "missing: \(missing.joined(separator: ", "))",
        twice.isEmpty ? nil : "completed more than once: \(twice.joined(separator: ", "))",
      ].compactMap { $0 }.joined(separator: "; ")
      let once = owned.count - missing.count - twice.count
      throw PipelineError(.io, "only \(once) of \(owned.count) shards were completed once (\(what))")
    }
    guard plan.options.workerCount == 1 else {
      // Another process finalises once every worker is done (`safeshard finalize`).
      let peak = budget.gauge.peak
      return Report(
        bytesWritten: totalBytes, shards: finished.map(\.fileName).sorted(), peakMemory: peak,
        spilledBytes: spilled.value, finalized: false)
    }
    // Once begun, work on the executor runs to its end: the flag lets a signal stop the copy
    // of the other files (a huge one included) between pieces.
    let cancelled = Locked(false)
    let finalized = await withTaskCancellationHandler { () async -> Result<Void, PipelineError> in
      do throws(PipelineError) {
        try await BlockingIOExecutor.shared.execute { [plan, output, inputDirectory] () throws(PipelineError) in
          try output.finalize(
            plan: plan, shards: finished, input: inputDirectory, configChange: plan.configChange,
            isCancelled: { cancelled.value })
        }
        return .success(())
      } catch {
        return .failure(error)
      }
    } onCancel: {
      cancelled.withLock { $0 = true }
    }
    try finalized.get()
    let peak = budget.gauge.peak
    progress(.finished(bytes: totalBytes, peakMemory: peak, spilledBytes: spilled.value))
    return Report(
      bytesWritten: totalBytes, shards: finished.map(\.fileName).sorted(), peakMemory: peak,
      spilledBytes: spilled.value, finalized: true)
  }

  /// Checks, before any data moves, what would otherwise fail only at the end: the input's
  /// `config.json` takes the quantization config, and the spill folder can be created. What a
  /// killed run left in the spill folder (this worker's own) is removed.
  private func preflight(spillFolder: String) throws(PipelineError) {
    if let inputDirectory, let change = plan.configChange {
      let path = join(inputDirectory, "config.json")
      if FileManager.default.fileExists(atPath: path) {
        _ = try OutputDirectory.configText(
          try OutputDirectory.contents(of: path), change: change, path: path)
      }
    }
    if let inputDirectory {
      for skipped in InputFiles(scanning: inputDirectory, excluding: output.path).skipped {
        progress(.fileWarning(path: join(inputDirectory, skipped.path), message: "not copied: \(skipped.reason)"))
      }
    } else if plan.quantizationConfig != nil {
      progress(
        .fileWarning(
          path: checkpoint.path,
          message: "a single file, so \(output.path) gets no config.json; transformers needs the model's "
            + "config.json with the quantization_config to load it. Convert the model's directory instead to get both"
        ))
    }
    do {
      if OutputDirectory.fileType(spillFolder) != nil { try FileManager.default.removeItem(atPath: spillFolder) }
      try FileManager.default.createDirectory(atPath: spillFolder, withIntermediateDirectories: true)
    } catch {
      throw PipelineError(
        .io, "cannot create the spill folder \(spillFolder): \(error.localizedDescription)", path: spillFolder,
        cause: error)
    }
  }

  /// Reads and quantizes every entry, in output order, sending its pieces; an entry none of
  /// whose bytes this run writes (``ShardStart/needs(_:)``) is skipped.
  private func produce(
    into channel: AsyncChannel<Piece>, budget: MemoryBudget, share: MemoryShare, starts: [ShardStart]
  ) async throws {
    let order = plan.entries.indices.filter { index in
      plan.placements(ofEntry: index).contains { starts[$0.shard].needs($0.tensor.dataOffsets) }
    }.map { ($0, firstPlacement(ofEntry: $0)) }.sorted { $0.1 < $1.1 }.map(\.0)
    let headerLengths = plan.shards.map(\.headerBytes.count)
    for (position, index) in order.enumerated() {
      try Task.checkCancellation()
      let entry = plan.entries[index]
      progress(.tensorStarted(name: entry.source.name, index: position, count: order.count))
      let job = TensorJob(
        entry: entry, placements: Array(plan.placements(ofEntry: index)), headerLengths: headerLengths,
        files: checkpoint.files, budget: budget, channel: channel, share: share, starts: starts, progress: progress)
      try await job.run()
    }
  }

  /// Where an entry's first stored byte goes: (shard, offset).
  private func firstPlacement(ofEntry index: Int) -> Placement {
    plan.placements(ofEntry: index)
      .map { Placement(shard: $0.shard, offset: $0.tensor.dataOffsets.lowerBound) }.min()
      ?? Placement(shard: .max, offset: 0)
  }

  private struct Placement: Comparable {
    var shard: Int
    var offset: Int
    static func < (lhs: Placement, rhs: Placement) -> Bool { (lhs.shard, lhs.offset) < (rhs.shard, rhs.offset) }
  }
}
