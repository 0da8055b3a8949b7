import Foundation
import SafeTensors
import Testing

@testable import Pipeline

/// What a resumed run still writes (``ShardStart``, ``RunState``), and that nothing else is
/// written: the D1 case of a finished shard that holds part of a tensor whose other parts are not.
@Suite struct ResumeTests {
  /// tiny-llama in 20 KB shards: shard 2 (index 1) is `layers.0.mlp.down_proj`'s `qdata` alone,
  /// 32,768 data bytes; its `scale` and `zero_point` are in shard 5.
  static func spanningPlan(workers: Int = 1, index: Int = 0) throws -> ConversionPlan {
    try ConversionHarness.plan(ConversionHarness.tinyLlama, recipe: "int8-weight-only") {
      $0.maxShardSize = 20_000
      $0.workerCount = workers
      $0.workerIndex = index
    }.1
  }

  @Test(arguments: [
    (ShardStart.notOwned, 0..<10, false),
    (.finished(ShardWriter.Result(fileName: "a", size: 1, sha256: "")), 0..<10, false),
    (.resume(dataOffset: 100), 0..<100, false),
    (.resume(dataOffset: 100), 90..<110, true),
    (.resume(dataOffset: 100), 100..<101, true),
    (.fresh, 0..<10, true),
  ])
  func aShardNeedsOnlyTheBytesThisRunWrites(start: ShardStart, range: Range<Int>, needed: Bool) {
    #expect(start.needs(range) == needed)
  }

  enum Disk: Sendable, CustomStringConvertible {
    case nothing
    case finished(size: Int, header: Bool = true)
    case partial(extraBytes: Int, header: Bool)

    var description: String {
      switch self {
      case .nothing: "nothing"
      case .finished(let size, let header): "finished file of \(size) bytes\(header ? "" : ", another header")"
      case .partial(let extra, let header): "partial of header+\(extra) bytes, header \(header ? "right" : "wrong")"
      }
    }
  }

  enum Recorded: Sendable, CustomStringConvertible {
    case none
    case done(sizeDelta: Int)
    case committed(dataBytes: Int)

    var description: String {
      switch self {
      case .none: "no line"
      case .done(let delta): "done, size \(delta >= 0 ? "+" : "")\(delta)"
      case .committed(let bytes): "commit of header+\(bytes)"
      }
    }
  }

  enum Expected: Sendable, Equatable {
    case finished
    case resume(Int)
    case fresh
  }

  @Test(arguments: [
    (Recorded.none, Disk.nothing, Expected.fresh),
    (.done(sizeDelta: 0), .finished(size: 38_296), .finished),
    (.done(sizeDelta: 0), .finished(size: 38_296, header: false), .fresh),
    (.done(sizeDelta: 0), .nothing, .fresh),
    (.done(sizeDelta: 0), .finished(size: 38_295), .fresh),
    (.done(sizeDelta: -1), .finished(size: 38_295), .fresh),
    (.committed(dataBytes: 100), .partial(extraBytes: 200, header: true), .resume(100)),
    (.committed(dataBytes: 100), .partial(extraBytes: 100, header: true), .resume(100)),
    (.committed(dataBytes: 0), .partial(extraBytes: 0, header: true), .resume(0)),
    (.committed(dataBytes: 100), .partial(extraBytes: 50, header: true), .fresh),
    (.committed(dataBytes: 100), .partial(extraBytes: 200, header: false), .fresh),
    (.committed(dataBytes: -1), .partial(extraBytes: 200, header: true), .fresh),
    (.committed(dataBytes: 32_768), .partial(extraBytes: 32_768, header: true), .fresh),
    (.committed(dataBytes: 100), .nothing, .fresh),
  ])
  func eachShardStartsWhereTheJournalAndTheDiskAgree(recorded: Recorded, disk: Disk, expected: Expected) throws {
    let plan = try Self.spanningPlan()
    let shard = plan.shards[1]
    #expect(shard.fileSize == 38_296 && shard.header.dataLength == 32_768)
    try withTemporaryDirectory { path in
      let output = OutputDirectory(path: path)
      try FileManager.default.createDirectory(atPath: output.stateFolder, withIntermediateDirectories: true)
      switch disk {
      case .nothing: break
      case .finished(let size, let header):
        var bytes = shard.headerBytes + [UInt8](repeating: 7, count: size - shard.headerBytes.count)
        if !header { bytes[9] ^= 1 }
        #expect(FileManager.default.createFile(atPath: path + "/" + shard.fileName, contents: Data(bytes)))
      case .partial(let extra, let header):
        var bytes = shard.headerBytes + [UInt8](repeating: 7, count: extra)
        if !header { bytes[9] ^= 1 }
        #expect(FileManager.default.createFile(atPath: output.partialPath(shard.fileName), contents: Data(bytes)))
      }
      var journals: [String: Journal.Entry] = [:]
      switch recorded {
      case .none: break
      case .done(let delta): journals[shard.fileName] = .done(size: shard.fileSize + delta, sha256: "ab")
      case .committed(let bytes): journals[shard.fileName] = .committed(length: shard.headerBytes.count + bytes)
      }
      let start = RunState(plan: plan, output: output, journals: journals).starts[1]
      switch expected {
      case .finished:
        #expect(start == .finished(ShardWriter.Result(fileName: shard.fileName, size: 38_296, sha256: "ab")))
      case .resume(let offset): #expect(start == .resume(dataOffset: offset))
      case .fresh: #expect(start == .fresh)
      }
    }
  }

  @Test func anotherWorkersShardsAreNotOwnedWhateverTheJournalsSay() throws {
    let plan = try Self.spanningPlan(workers: 2, index: 1)
    try withTemporaryDirectory { path in
      let journals = Dictionary(
        uniqueKeysWithValues: plan.shards.map { ($0.fileName, Journal.Entry.committed(length: 0)) })
      let starts = RunState(plan: plan, output: OutputDirectory(path: path), journals: journals).starts
      #expect(starts.count == 15)
      #expect(starts.enumerated().allSatisfy { ($0.offset % 2 == 1) == ($0.element == .fresh) })
      #expect(starts.enumerated().allSatisfy { ($0.offset % 2 == 0) == ($0.element == .notOwned) })
    }
  }

  /// Appendix A of the design review, in process: the journal says shards 1 and 2 are done,
  /// shard 5 (down_proj's scale) has no line. The run must finish at once, with the bytes of an
  /// uninterrupted run, without writing shard 2 again.
  @Test func aResumeAfterAShardOfASpanningTensorIsDoneNeverWritesThatShardAgain() async throws {
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    let configure: (inout ConversionOptions) -> Void = {
      $0.maxShardSize = 20_000
      $0.jobs = 1
    }
    try await ConversionHarness.convert(ConversionHarness.tinyLlama, to: clean, recipe: "int8-weight-only", configure)

    let output = scratch.appendingPathComponent("out").path
    let directory = OutputDirectory(path: output)
    let (checkpoint, plan) = try ConversionHarness.plan(
      ConversionHarness.tinyLlama, recipe: "int8-weight-only", configure)
    do {
      let lock = try directory.lock()
      defer { withExtendedLifetime(lock) {} }
      try directory.record(
        RunIdentity(input: ConversionHarness.tinyLlama, recipe: "int8-weight-only", checkpoint: checkpoint, plan: plan))
    }
    var journal = ""
    for shard in plan.shards.prefix(2) {
      try FileManager.default.copyItem(atPath: clean + "/" + shard.fileName, toPath: output + "/" + shard.fileName)
      let digest = try ChecksumList.digest(ofFile: output + "/" + shard.fileName)
      journal += "done \(shard.fileName) \(shard.fileSize) \(digest)\n"
    }
    try journal.write(toFile: directory.journalPath(worker: 0), atomically: true, encoding: .utf8)
    let kept = output + "/" + plan.shards[1].fileName
    let inode = try FileManager.default.attributesOfItem(atPath: kept)[.systemFileNumber] as? Int

    let report = try await ConversionHarness.convert(
      ConversionHarness.tinyLlama, to: output, recipe: "int8-weight-only", configure)
    #expect(report.shards.count == 15)
    #expect(try ConversionHarness.contents(of: output) == ConversionHarness.contents(of: clean))
    #expect(try FileManager.default.attributesOfItem(atPath: kept)[.systemFileNumber] as? Int == inode)
  }

  /// A finished writer takes no more bytes: a piece that reaches it is dropped (its buffer and
  /// reservation with it), and neither the file nor the journal changes.
  @Test func aFinishedShardWriterDropsFurtherPieces() async throws {
    let plan = try Self.spanningPlan()
    let shard = plan.shards[1]
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = OutputDirectory(path: scratch.path)
    try FileManager.default.createDirectory(atPath: output.stateFolder, withIntermediateDirectories: true)
    let journal = try Journal(path: output.journalPath(worker: 0))
    let budget = MemoryBudget(capacity: 1 << 20)
    let writer = ShardWriter(
      shard: shard, partialPath: output.partialPath(shard.fileName),
      finalPath: output.finishedPath(shard.fileName, shardCount: 15), staging: StagingAccount(limit: 1 << 20),
      spillDirectory: scratch.path, spillCompression: .none, journal: journal, commitInterval: 1 << 20,
      blocks: WriteBlocks(size: 64 << 10, reservation: budget.tryReserve(WriteBlocks.count * (64 << 10))!),
      spillMemory: SpillMemory(
        readBack: PieceBuffer(count: 32_768, reservation: budget.tryReserve(32_768)!), scratchBytes: 0,
        gauge: budget.gauge),
      executor: SerialThreadExecutor(name: "test-writer"))
    let fixed = budget.reserved
    func piece() -> Piece {
      let buffer = PieceBuffer(count: 32_768, reservation: budget.tryReserve(32_768)!)
      buffer.bytes.initializeMemory(as: UInt8.self, repeating: 3)
      return Piece(shard: 1, offset: 0, buffer: buffer, elementWidth: 1)
    }
    let first = try await writer.receive(piece())
    #expect(first.finished?.size == 38_296 && first.written == 32_768)
    #expect(budget.reserved == fixed)
    let path = scratch.path + "/" + shard.fileName
    let inode = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
    let again = try await writer.receive(piece())
    #expect(again.finished == nil && again.written == 0)
    #expect(budget.reserved == fixed)
    #expect(try await writer.finishIfEmpty() == nil)
    #expect(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int == inode)
    let lines = try String(contentsOfFile: output.journalPath(worker: 0), encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 1 && lines[0].hasPrefix("done \(shard.fileName) 38296 "))
  }
}
