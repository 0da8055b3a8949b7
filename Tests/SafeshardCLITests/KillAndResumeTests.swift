import Foundation
import SafeTensors
import Testing

/// Crash safety: a conversion killed with SIGKILL right after each durable transition — a
/// commit, a shard's `done`, a spill, each step of finalisation — and then run again with the
/// same command finishes on that first rerun with an output byte for byte identical to an
/// uninterrupted run. The kills are fault points (`SAFESHARD_FAULT`, debug builds only), so every
/// run is the same; `Tests/Soak/kill-resume.sh` kills at random moments instead.
@Suite(.serialized) struct KillAndResumeTests {
  /// A multi-shard bf16 model of 6 × [512, 2048] weights with finite, seeded values.
  static func makeModel(in directory: URL) throws -> String {
    let model = directory.appendingPathComponent("model").path
    try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
    var specs: [TensorSpec] = []
    for layer in 0..<6 {
      specs.append(TensorSpec(name: "model.layers.\(layer).mlp.up_proj.weight", dtype: .bf16, shape: [512, 2048]))
      specs.append(TensorSpec(name: "model.layers.\(layer).input_layernorm.weight", dtype: .bf16, shape: [2048]))
    }
    var writer = try SafeTensorsWriter(
      path: model + "/model.safetensors", header: SafeTensorsHeader(metadata: ["format": "pt"], tensors: specs))
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for spec in specs {
      var bytes = [UInt8](repeating: 0, count: try spec.byteCount())
      for index in stride(from: 0, to: bytes.count, by: 2) {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        // Sign, an exponent around 2⁻⁶…2⁻², and a random mantissa: finite weights.
        let bits = UInt16(truncatingIfNeeded: state >> 48) & 0x807F | UInt16(0x3C + (state >> 40) % 5) << 7
        bytes[index] = UInt8(bits & 0xFF)
        bytes[index + 1] = UInt8(bits >> 8)
      }
      try writer.write(bytes)
    }
    try writer.finish()
    try #"{"model_type": "llama"}"#.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
    return model
  }

  /// A new scratch directory holding the model of ``makeModel(in:)``.
  static func scratchWithModel() throws -> (URL, String) {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-kill-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    return (scratch, try makeModel(in: scratch))
  }

  static func arguments(_ model: String, _ output: String) -> [String] {
    [
      "convert", model, output, "--recipe", "int8-weight-only", "--max-shard-size", "3MB", "--memory", "4MiB",
      "--jobs", "1", "--commit-interval", "256KiB", "--progress", "none",
    ]
  }

  /// tiny-llama in 20 KB shards: each MLP weight's `qdata` is a shard of its own, and its
  /// `scale` and `zero_point` go to a later shard (Hugging Face's rule for a tensor larger than a
  /// shard).
  static func spanningArguments(_ output: String) -> [String] {
    [
      "convert", ConvertCommandTests.tinyLlama, output, "--recipe", "int8-weight-only", "--max-shard-size", "20KB",
      "--jobs", "1", "--progress", "none",
    ]
  }

  /// Runs `arguments` killed at `event`, checks the kill happened, then runs them again and
  /// checks that this first rerun succeeds with the bytes of `reference`.
  static func killAndResume(
    _ arguments: [String], at event: String, reference: [String: Data], output: String
  ) throws {
    let killed = try CLIRunner.run(arguments, environment: ["SAFESHARD_FAULT": "kill-after:\(event)"])
    #expect(killed.status == 9, "\(event): the injected kill did not happen: \(killed.standardError)")
    // Nothing that looks complete after a kill.
    #expect(FileManager.default.fileExists(atPath: output + "/.safeshard"))
    let resumed = try CLIRunner.run(arguments)
    #expect(resumed.status == 0, "\(event): \(resumed.standardError)")
    #expect(try contents(of: output) == reference, "\(event): the resumed output differs")
  }

  @Test func aRunKilledAfterACommitContinuesFromItToTheSameBytes() throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(Self.arguments(model, clean)).status == 0)
    let reference = try Self.contents(of: clean)
    #expect(reference.keys.filter { $0.hasSuffix(".safetensors") }.count == 3)

    for (shard, commit) in [("model-00001-of-00003.safetensors", 1), ("model-00002-of-00003.safetensors", 3)] {
      let output = scratch.appendingPathComponent("commit-\(shard)-\(commit)").path
      let killed = try CLIRunner.run(
        Self.arguments(model, output), environment: ["SAFESHARD_FAULT": "kill-after:commit:\(shard):\(commit)"])
      #expect(killed.status == 9)
      let journal = try String(contentsOfFile: output + "/.safeshard/journal-0.log", encoding: .utf8)
      let commits = journal.split(separator: "\n").filter { $0.hasPrefix("commit \(shard) ") }
      #expect(commits.count == commit, "\(journal)")
      let resumed = try CLIRunner.run(Self.arguments(model, output))
      #expect(resumed.status == 0, "\(resumed.standardError)")
      #expect(try Self.contents(of: output) == reference)
    }
  }

  /// The D1 case: killed right after the shard that holds only `down_proj`'s `qdata` is done, and
  /// before the shard with its `scale` has a journal line. The rerun must not write that finished
  /// shard again (same inode), and must finish the first time.
  @Test func aRunKilledAfterAShardOfASpanningTensorIsDoneKeepsThatShardAndFinishesOnTheFirstRerun() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(Self.spanningArguments(clean)).status == 0)
    let reference = try Self.contents(of: clean)
    #expect(reference.keys.filter { $0.hasSuffix(".safetensors") }.count == 15)

    let output = scratch.appendingPathComponent("out").path
    let shard = output + "/model-00002-of-00015.safetensors"
    let killed = try CLIRunner.run(
      Self.spanningArguments(output),
      environment: ["SAFESHARD_FAULT": "kill-after:done:model-00002-of-00015.safetensors"])
    #expect(killed.status == 9)
    let journal = try String(contentsOfFile: output + "/.safeshard/journal-0.log", encoding: .utf8)
    #expect(
      journal.split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
        "done model-00001-of-00015.safetensors", "done model-00002-of-00015.safetensors",
      ])
    let inode = try #require(FileManager.default.attributesOfItem(atPath: shard)[.systemFileNumber] as? Int)

    let resumed = try CLIRunner.run(Self.spanningArguments(output))
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try Self.contents(of: output) == reference)
    #expect(try FileManager.default.attributesOfItem(atPath: shard)[.systemFileNumber] as? Int == inode)
  }

  /// Killed after a piece was spilled to `--spill-dir`: the rerun removes the killed run's spill
  /// file (it is in a folder of this output's own) and finishes with the same bytes.
  @Test func aRunKilledAfterASpillLeavesNoSpillFileOnceResumed() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let spill = scratch.appendingPathComponent("spill").path
    let neighbour = spill + "/someone-elses.bin"
    try FileManager.default.createDirectory(atPath: spill, withIntermediateDirectories: true)
    #expect(FileManager.default.createFile(atPath: neighbour, contents: Data([1])))
    func arguments(_ output: String) -> [String] {
      [
        "convert", ConvertCommandTests.tinyLlama, output, "--recipe", "int8-weight-only", "--layout", "canonical",
        "--memory", "160KiB", "--spill-dir", spill, "--progress", "none",
      ]
    }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(arguments(clean)).status == 0)
    let reference = try Self.contents(of: clean)

    let output = scratch.appendingPathComponent("out").path
    let killed = try CLIRunner.run(arguments(output), environment: ["SAFESHARD_FAULT": "kill-after:spill:2"])
    #expect(killed.status == 9)
    let left = try FileManager.default.subpathsOfDirectory(atPath: spill).filter { $0.hasSuffix(".bin") }
    #expect(left.contains { $0.hasPrefix("safeshard-") && $0.contains("/spill-") }, "\(left)")

    let resumed = try CLIRunner.run(arguments(output))
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try Self.contents(of: output) == reference)
    #expect(try FileManager.default.contentsOfDirectory(atPath: spill) == ["someone-elses.bin"])
  }

  @Test(arguments: ["finalize-files", "finalize-sums", "finalize-weights"])
  func aRunKilledInsideFinalizeFinishesOnTheFirstRerun(point: String) throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(Self.arguments(model, clean)).status == 0)
    let output = scratch.appendingPathComponent(point).path
    let killed = try CLIRunner.run(Self.arguments(model, output), environment: ["SAFESHARD_FAULT": "kill-at:\(point)"])
    #expect(killed.status == 9, "\(point): the injected kill did not happen")
    #expect(!FileManager.default.fileExists(atPath: output + "/model.safetensors.index.json"))
    let resumed = try CLIRunner.run(Self.arguments(model, output))
    #expect(resumed.status == 0, "\(point): \(resumed.standardError)")
    #expect(try Self.contents(of: output) == Self.contents(of: clean), "\(point): resumed output differs")
  }

  @Test func aChangedInputIsRefusedSayingWhatChangedAndRestartStartsOver() throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let killed = try CLIRunner.run(
      Self.arguments(model, output), environment: ["SAFESHARD_FAULT": "kill-at:finalize-files"])
    #expect(killed.status == 9)
    // Another shard size gives another plan.
    var other = Self.arguments(model, output)
    other[other.firstIndex(of: "3MB")!] = "2MB"
    let refused = try CLIRunner.run(other)
    #expect(refused.status == 64)
    #expect(refused.standardError.contains("give other shards"))
    #expect(refused.standardError.contains("--restart"))
    let restarted = try CLIRunner.run(other + ["--restart"])
    #expect(restarted.status == 0, "\(restarted.standardError)")
    #expect(try CLIRunner.run(["verify", output]).status == 0)
  }

  @Test func aTornJournalAndAPartialShardLongerThanItsJournalSaysAreHandled() throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(Self.arguments(model, clean)).status == 0)
    let reference = try Self.contents(of: clean)

    let output = scratch.appendingPathComponent("out").path
    // A full disk after 1 MB of the first shard stops the run with a clear error…
    let full = try CLIRunner.run(
      Self.arguments(model, output), environment: ["SAFESHARD_FAULT": "enospc-after:1000000"])
    #expect(full.status == 74)
    #expect(full.standardError.contains("No space left on device"))
    #expect(full.standardError.contains(".partial"))
    let state = output + "/.safeshard"
    let journal = state + "/journal-0.log"
    let partial = state + "/model-00001-of-00003.safetensors.partial"
    let lines = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n")
    #expect(lines.contains { $0.hasPrefix("commit model-00001-of-00003.safetensors ") })
    // …then damage the state: garbage after the partial's committed length, and a torn last
    // journal line that claims more than is on disk.
    let handle = try #require(FileHandle(forWritingAtPath: partial))
    try handle.seekToEnd()
    handle.write(Data(repeating: 0xEE, count: 4096))
    try handle.close()
    let journalHandle = try #require(FileHandle(forWritingAtPath: journal))
    try journalHandle.seekToEnd()
    journalHandle.write(Data("commit model-00001-of-00003.safetensors 2999".utf8))
    try journalHandle.close()
    // Once the disk has room again, the same command finishes with the right bytes.
    let resumed = try CLIRunner.run(Self.arguments(model, output))
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try Self.contents(of: output) == reference)
  }

  @Test func aSecondProcessForTheSameOutputIsRefused() throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let first = try PausedRun(Self.arguments(model, output), pausedAt: "locked", scratch: scratch)
    #expect(first.waitUntilPaused())
    let second = try CLIRunner.run(Self.arguments(model, output))
    #expect(second.status == 75)
    #expect(second.standardError.contains("another safeshard process"))
    #expect(first.release().status == 0)
    #expect(try CLIRunner.run(["verify", output]).status == 0)
  }

  /// M2: `--restart` from another worker index while worker 0 runs is refused, naming worker 0,
  /// and deletes nothing.
  @Test func restartIsRefusedWhileAnyWorkerRuns() throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let worker0 = try PausedRun(
      Self.arguments(model, output) + ["--worker-index", "0", "--worker-count", "2"],
      pausedAt: "done:model-00001-of-00003.safetensors", scratch: scratch)
    #expect(worker0.waitUntilPaused())
    let before = try FileManager.default.contentsOfDirectory(atPath: output + "/.safeshard").sorted()
    let restart = try CLIRunner.run(
      Self.arguments(model, output) + ["--worker-index", "1", "--worker-count", "2", "--restart"])
    #expect(restart.status == 75)
    #expect(restart.standardError.contains("worker 0"), "\(restart.standardError)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: output + "/.safeshard").sorted() == before)
    #expect(FileManager.default.fileExists(atPath: output + "/model-00001-of-00003.safetensors"))
    #expect(worker0.release().status == 0)
  }

  /// M3: a state folder that is a symbolic link is never followed, not even by `--restart`.
  @Test func aSymlinkedStateFolderIsRefusedAndItsTargetKept() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let victim = scratch.appendingPathComponent("victim").path
    try FileManager.default.createDirectory(atPath: victim + "/sub", withIntermediateDirectories: true)
    try "keep".write(toFile: victim + "/notes.txt", atomically: true, encoding: .utf8)
    try "keep".write(toFile: victim + "/sub/data.txt", atomically: true, encoding: .utf8)
    let output = scratch.appendingPathComponent("out").path
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: output + "/.safeshard", withDestinationPath: victim)
    for extra in [[], ["--restart"]] {
      let result = try CLIRunner.run(
        ["convert", ConvertCommandTests.tinyLlama, output, "--recipe", "int8-weight-only"] + extra)
      #expect(result.status == 64)
      #expect(result.standardError.contains("symbolic link"), "\(result.standardError)")
    }
    #expect(
      try FileManager.default.subpathsOfDirectory(atPath: victim).sorted() == ["notes.txt", "sub", "sub/data.txt"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: output) == [".safeshard"])
  }

  static func contents(of directory: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
      files[name] = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
    }
    return files
  }
}

/// A real full disk: a small tmpfs, where the test can mount one (root with the right to mount).
@Suite struct FullDiskTests {
  static func mount(_ arguments: [String]) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/mount")
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
  }

  static let canMount: Bool = {
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-probe-\(UUID().uuidString)")
      .path
    try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: probe) }
    guard getuid() == 0, mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]) else { return false }
    return umount(probe) == 0
  }()

  @Test(.enabled(if: canMount, "needs root and the right to mount a tmpfs"))
  func aFullDiskStopsTheRunNamingThePathAndTheSameCommandFinishesOnceThereIsRoom() throws {
    let (scratch, model) = try KillAndResumeTests.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(KillAndResumeTests.arguments(model, clean)).status == 0)

    let disk = scratch.appendingPathComponent("disk").path
    try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
    #expect(Self.mount(["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]))
    defer { _ = umount(disk) }
    let output = disk + "/out"
    let full = try CLIRunner.run(KillAndResumeTests.arguments(model, output))
    #expect(full.status == 74)
    #expect(full.standardError.contains("No space left on device"))
    #expect(full.standardError.contains(disk))
    #expect(!FileManager.default.fileExists(atPath: output + "/SHA256SUMS"))

    #expect(Self.mount(["-o", "remount,size=64m", disk]))
    let resumed = try CLIRunner.run(KillAndResumeTests.arguments(model, output))
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try KillAndResumeTests.contents(of: output) == KillAndResumeTests.contents(of: clean))
  }
}
