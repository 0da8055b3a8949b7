import Crypto
import Foundation
import SafeTensors
import SystemPackage

/// The output directory of a conversion and its state folder.
///
/// While a conversion runs, everything incomplete lives in `OUTPUT/.safeshard/` under names no
/// loader picks up: partial shards (`*.partial`), spill files, and `state.json`, which marks the
/// directory as ours. Finished shards of a sharded output are renamed into place as they
/// complete; ``finalize(plan:shards:input:configChange:isCancelled:)`` writes the other files, then
/// the index (or, for a single shard, moves `model.safetensors` into place) last, and removes
/// the state folder. A run that stops early leaves no index and no `model.safetensors`, so
/// nothing that looks complete.
public struct OutputDirectory: Sendable {
  /// The name of the state folder inside the output.
  public static let stateFolderName = ".safeshard"

  /// The output directory.
  public let path: String

  public init(path: String) {
    self.path = path
  }

  var stateFolder: String { join(path, Self.stateFolderName) }
  var stateFile: String { join(stateFolder, "state.json") }

  /// Where worker `index` spills: a folder of its own, in the state folder, or in `directory`
  /// (`--spill-dir`) under a name made from the output's path, so that a resumed run can empty
  /// it of what a killed run left without touching another run's files.
  func spillFolder(worker index: Int, in directory: String?) -> String {
    guard let directory else { return join(stateFolder, "spill-\(index)") }
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    let digest = ChecksumList.hex(SHA256.hash(data: Data(absolute.utf8))).prefix(16)
    return join(directory, "safeshard-\(digest)-\(index)")
  }
  /// The journal of worker `index` (each worker has its own: appends from several machines to
  /// one file are not atomic on shared filesystems).
  func journalPath(worker index: Int) -> String { join(stateFolder, "journal-\(index).log") }

  /// Every worker's journal, merged: the last word on each shard. Read only.
  func allJournals() -> [String: Journal.Entry] {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: stateFolder)) ?? []).filter {
      $0.hasPrefix("journal-") && $0.hasSuffix(".log")
    }
    return names.sorted().reduce(into: [:]) { merged, name in
      merged.merge(Journal.read(join(stateFolder, name))) { _, new in new }
    }
  }

  /// Where a shard is written while incomplete.
  func partialPath(_ fileName: String) -> String { join(stateFolder, fileName + ".partial") }

  /// Where a finished shard goes: in place for a sharded output; in the state folder for a
  /// single `model.safetensors`, which ``finalize`` moves into place last.
  func finishedPath(_ fileName: String, shardCount: Int) -> String {
    shardCount == 1 ? join(stateFolder, fileName) : join(path, fileName)
  }

  /// Whether the finished shard `fileName` of `size` bytes, beginning with `header`, is where a
  /// finished shard goes (for a single shard: in the state folder, or already moved into place by
  /// an interrupted finish).
  func hasFinished(_ fileName: String, size: Int, header: [UInt8]) -> Bool {
    [join(stateFolder, fileName), join(path, fileName)].contains { candidate in
      (try? FileManager.default.attributesOfItem(atPath: candidate)[.size] as? Int) == size
        && RunState.partial(candidate, holds: size, header: header)
    }
  }

  /// What is in the directory before a run.
  public enum Status: Sendable, Equatable {
    /// Missing or empty.
    case empty
    /// A conversion of ours that did not finish (it has a state folder).
    case unfinished
    /// A finished output: `SHA256SUMS` and the weights are there, no state folder.
    case finished
    /// Something else.
    case foreign(String)
  }

  /// Looks at the directory without changing it.
  public func status() -> Status {
    let manager = FileManager.default
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else { return .empty }
    guard isDirectory.boolValue else { return .foreign("it is a file") }
    let names = (try? manager.contentsOfDirectory(atPath: path)) ?? []
    if names.isEmpty { return .empty }
    switch Self.fileType(stateFolder) {
    case S_IFDIR: return .unfinished
    case S_IFLNK:
      return .foreign("\(Self.stateFolderName) is a symbolic link, and safeshard never follows one for its state")
    case nil: break
    default: return .foreign("\(Self.stateFolderName) is not a folder")
    }
    if names.contains("SHA256SUMS") && (names.contains("model.safetensors") || names.contains(ShardIndex.fileName)) {
      return .finished
    }
    return .foreign("it holds \(names.count) entries and no safeshard state")
  }

  /// Takes worker `index`'s lock (`.safeshard/lock-INDEX`, creating the folders as needed):
  /// held until the returned lock is released or the process ends, and refused while another
  /// process holds it. Workers with other indexes run side by side.
  ///
  /// The lock is a `flock(2)`, which the kernel releases when its holder dies.
  public func lock(worker index: Int = 0) throws(PipelineError) -> RunLock {
    try makeStateFolder()
    return try RunLock(path: join(stateFolder, "lock-\(index)"), worker: index)
  }

  /// Takes the lock of every worker: `0..<workerCount` and any other `lock-*` in the state folder
  /// (a run with more workers left them). What `--restart` and `finalize` need before they touch
  /// other workers' files.
  ///
  /// - Throws: ``PipelineError`` (`locked`) naming the first worker that still runs; no lock is
  ///   kept then.
  public func lockAll(workerCount: Int) throws(PipelineError) -> [Int: RunLock] {
    try makeStateFolder()
    let names = (try? FileManager.default.contentsOfDirectory(atPath: stateFolder)) ?? []
    let recorded = names.compactMap { name in name.hasPrefix("lock-") ? Int(name.dropFirst(5)) : nil }
    let workers = Set(0..<max(1, workerCount)).union(recorded.filter { $0 >= 0 }).sorted()
    var locks: [Int: RunLock] = [:]
    for worker in workers {
      locks[worker] = try RunLock(path: join(stateFolder, "lock-\(worker)"), worker: worker)
    }
    return locks
  }

  /// Creates the state folder; refuses one that is a symbolic link or not a folder (a link is
  /// never followed: `--restart` would empty its target).
  private func makeStateFolder() throws(PipelineError) {
    switch Self.fileType(stateFolder) {
    case S_IFDIR: return
    case nil: break
    case S_IFLNK:
      throw PipelineError(
        .outputExists,
        "\(stateFolder) is a symbolic link; safeshard never follows one for its state. Remove the link, or choose another OUTPUT",
        path: stateFolder)
    default:
      throw PipelineError(.outputExists, "\(stateFolder) is not a folder", path: stateFolder)
    }
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw PipelineError(.io, "creating \(path): \(error.localizedDescription)", path: path, cause: error)
    }
    guard mkdir(stateFolder, 0o755) == 0 || errno == EEXIST, Self.fileType(stateFolder) == S_IFDIR else {
      throw PipelineError.systemCall("mkdir", Errno(rawValue: errno), path: stateFolder)
    }
  }

  /// The type bits (`S_IFDIR`, `S_IFLNK`, ...) of `path` itself, not of what a link points to;
  /// `nil` when nothing is there.
  static func fileType(_ path: String) -> mode_t? {
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    return status.st_mode & S_IFMT
  }

  /// The identity an unfinished run recorded; `nil` when there is no `state.json` (a run killed
  /// before it recorded one).
  ///
  /// - Throws: ``PipelineError`` (`outputExists`) when `state.json` is there but is not one
  ///   safeshard wrote: its journals cannot be trusted.
  public func recordedIdentity() throws(PipelineError) -> RunIdentity? {
    guard Self.fileType(stateFile) != nil else { return nil }
    guard let data = FileManager.default.contents(atPath: stateFile), let json = try? JSONParser.parse(Array(data)),
      let identity = RunIdentity(json: json)
    else {
      throw PipelineError(
        .outputExists,
        "\(stateFile) is damaged, so the unfinished run in \(path) cannot be continued. Run with --restart to start over",
        path: stateFile)
    }
    return identity
  }

  /// Records `identity` in `state.json` (atomically: workers starting together write the same
  /// text).
  public func record(_ identity: RunIdentity) throws(PipelineError) {
    try writeAtomically(Array((JSONWriter.string(identity.json, style: .pythonIndented) + "\n").utf8), to: stateFile)
  }

  /// Discards an unfinished run (`--restart`): empties the state folder but for the locks, and
  /// removes the weights, index and checksums it put in place. The caller holds every worker's
  /// lock (``lockAll(workerCount:)``).
  public func reset() throws(PipelineError) {
    let manager = FileManager.default
    try makeStateFolder()
    do {
      for name in (try? manager.contentsOfDirectory(atPath: stateFolder)) ?? [] where !name.hasPrefix("lock-") {
        try manager.removeItem(atPath: join(stateFolder, name))
      }
      for name in (try? manager.contentsOfDirectory(atPath: path)) ?? []
      where name.hasSuffix(".safetensors") || name == ShardIndex.fileName || name == ChecksumList.fileName {
        try manager.removeItem(atPath: join(path, name))
      }
    } catch {
      throw PipelineError(
        .io, "clearing \(stateFolder): \(error.localizedDescription)", path: stateFolder, cause: error)
    }
  }

  /// Writes everything but the shards and removes the state folder: the input's other files
  /// (``copyInputFiles(from:configChange:isCancelled:)``), `config.json` (changed by `configChange`
  /// when given), `SHA256SUMS` of every file, and last the index (or the single
  /// `model.safetensors`). `isCancelled` stops the copy of the other files (a signal).
  func finalize(
    plan: ConversionPlan, shards: [ShardWriter.Result], input: String?, configChange: ConversionPlan.ConfigChange?,
    isCancelled: () -> Bool
  ) throws(PipelineError) {
    do {
      FaultInjection.reach("finalize-files")
      let copied = try input.map { input throws(PipelineError) in
        try copyInputFiles(from: input, configChange: configChange, isCancelled: isCancelled)
      }
      FaultInjection.reach("finalize-sums")
      var digests = Dictionary(uniqueKeysWithValues: shards.map { ($0.fileName, $0.sha256) })
      digests.merge(copied ?? [:]) { shard, _ in shard }
      let index = plan.shards.count > 1 ? Array(Self.indexText(plan).utf8) : nil
      if let index {
        // Listed before it is written: the index goes into place last.
        digests[ShardIndex.fileName] = ChecksumList.hex(SHA256.hash(data: index))
      }
      let sums = ChecksumList(digests: digests)
      try writeAtomically(Array(sums.text.utf8), to: join(path, ChecksumList.fileName))
      FaultInjection.reach("finalize-weights")
      if let index {
        try writeAtomically(index, to: join(path, ShardIndex.fileName))
      } else {
        // A run that died after this rename finds the shard in place and goes on.
        let staged = join(stateFolder, plan.shards[0].fileName)
        if FileManager.default.fileExists(atPath: staged) {
          try Self.moveIntoPlace(staged, to: join(path, plan.shards[0].fileName))
        }
      }
      try FileManager.default.removeItem(atPath: stateFolder)
      try Self.syncDirectory(path)
    } catch let error as PipelineError {
      throw error
    } catch {
      throw PipelineError(.io, "finishing \(path): \(error.localizedDescription)", path: path, cause: error)
    }
  }

  /// Finishes an output that several workers wrote: checks that every shard of `plan` is there
  /// with the size and SHA-256 its worker recorded, then writes the other files, the checksums
  /// and the index (``finalize(plan:shards:input:configChange:isCancelled:)``).
  ///
  /// - Throws: ``PipelineError`` naming the first shard that is missing, unfinished or differs.
  public func finishWorkers(plan: ConversionPlan, input: String?) throws(PipelineError) {
    let journals = allJournals()
    var results: [ShardWriter.Result] = []
    for (index, shard) in plan.shards.enumerated() {
      let worker = index % plan.options.workerCount
      guard case .done(let size, let sha256) = journals[shard.fileName] else {
        throw PipelineError(
          .incomplete,
          "\(shard.fileName) is not finished: worker \(worker) of \(plan.options.workerCount) has not written it; "
            + "run that worker again, then finalize", path: join(path, shard.fileName))
      }
      let location = [join(stateFolder, shard.fileName), join(path, shard.fileName)].first {
        FileManager.default.fileExists(atPath: $0)
      }
      guard let location, (try? FileManager.default.attributesOfItem(atPath: location)[.size] as? Int) == size,
        size == shard.fileSize
      else {
        throw PipelineError(
          .io, "\(shard.fileName) is missing or not the \(shard.fileSize) bytes worker \(worker) recorded",
          path: location ?? join(path, shard.fileName))
      }
      let digest = try ChecksumList.digest(ofFile: location)
      guard digest == sha256 else {
        throw PipelineError(
          .io, "\(location): SHA-256 \(digest) differs from the \(sha256) worker \(worker) recorded", path: location)
      }
      results.append(ShardWriter.Result(fileName: shard.fileName, size: size, sha256: sha256))
    }
    // `safeshard finalize` keeps the default action of SIGINT and SIGTERM: they end it at once.
    try finalize(
      plan: plan, shards: results, input: input, configChange: plan.configChange, isCancelled: { false })
  }

  /// `model.safetensors.index.json` as transformers writes it (`indent=2, sort_keys=True`).
  static func indexText(_ plan: ConversionPlan) -> String {
    ShardIndex(
      metadata: [
        JSONMember("total_parameters", .number(String(plan.totalParameters))),
        JSONMember("total_size", .number(String(plan.totalSize))),
      ],
      weightMap: plan.shards.flatMap { shard in shard.header.tensors.map { ($0.name, shard.fileName) } }
    ).encoded()
  }

  /// A fresh temporary name in the state folder: on the output's filesystem, so a rename moves
  /// it into place, and removed with the state folder if a crash leaves it behind.
  func temporaryPath() -> String {
    join(stateFolder, "tmp-\(UUID().uuidString)")
  }

  /// Writes `bytes` to a temporary file, fsyncs, and renames it over `path`.
  func writeAtomically(_ bytes: [UInt8], to path: String) throws(PipelineError) {
    let temporary = temporaryPath()
    do {
      let descriptor = try FileDescriptor.open(
        FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec],
        permissions: [.ownerReadWrite, .groupRead, .otherRead])
      try descriptor.closeAfter {
        _ = try descriptor.writeAll(bytes)
        try descriptor.sync()
      }
    } catch {
      throw PipelineError(.io, "writing \(temporary): \(error)", path: temporary, cause: error)
    }
    try Self.moveIntoPlace(temporary, to: path)
  }

  /// Renames `from` over `path`; the directory is fsynced once, at the end of ``finalize``.
  static func moveIntoPlace(_ from: String, to path: String) throws(PipelineError) {
    guard rename(from, path) == 0 else {
      let error = Errno(rawValue: errno)
      throw PipelineError(
        .io, "renaming \(from) to \(path): \(error.description) (errno \(error.rawValue))", path: path,
        cause: PipelineError.SystemCallError("rename", error))
    }
  }

  /// Makes the entries of folder `path` (a rename into it) durable.
  static func syncDirectory(_ path: String) throws(PipelineError) {
    let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard descriptor >= 0 else { throw PipelineError.systemCall("open", Errno(rawValue: errno), path: path) }
    defer { close(descriptor) }
    guard fsync(descriptor) == 0 else { throw PipelineError.systemCall("fsync", Errno(rawValue: errno), path: path) }
  }
}

func join(_ directory: String, _ name: String) -> String {
  directory.hasSuffix("/") ? directory + name : directory + "/" + name
}
