import Foundation
import SafeTensors
import Testing

/// Crash safety: a conversion killed with SIGKILL at any moment — while writing, or in any step
/// of finalisation — and then run again with the same command ends with an output byte for byte
/// identical to an uninterrupted run, and no state left behind.
@Suite(.serialized) struct KillAndResumeTests {
  static let kills = 22

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

  @Test func killedRunsResumeToTheSameBytesAsAnUninterruptedRun() throws {
    let (scratch, model) = try Self.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clean = scratch.appendingPathComponent("clean").path
    #expect(try CLIRunner.run(Self.arguments(model, clean)).status == 0)
    let reference = try Self.contents(of: clean)
    // How long a run takes with a warm cache: the kills are spread over that time.
    let timed = scratch.appendingPathComponent("timed").path
    let started = Date()
    #expect(try CLIRunner.run(Self.arguments(model, timed)).status == 0)
    let duration = Date().timeIntervalSince(started) * 0.9
    #expect(reference.keys.filter { $0.hasSuffix(".safetensors") }.count == 3)

    var random = SystemRandomNumberGenerator()
    var identical = 0
    var killedMidRun = 0
    for round in 0..<Self.kills {
      let output = scratch.appendingPathComponent("run\(round)").path
      let process = Process()
      process.executableURL = CLIRunner.executable
      process.arguments = Self.arguments(model, output)
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      usleep(UInt32.random(in: 0...UInt32(duration * 1_000_000), using: &random))
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      if process.terminationReason == .uncaughtSignal { killedMidRun += 1 }
      // Nothing that looks complete after a kill in the middle.
      if process.terminationReason == .uncaughtSignal {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        #expect(!names.contains("SHA256SUMS") || names.contains(".safeshard"))
      }
      let resumed = try CLIRunner.run(Self.arguments(model, output))
      #expect(resumed.status == 0, "round \(round): \(resumed.standardError)")
      if try Self.contents(of: output) == reference { identical += 1 }
      try? FileManager.default.removeItem(atPath: output)
    }
    #expect(identical == Self.kills, "\(identical) of \(Self.kills) resumed outputs are byte-identical")
    #expect(killedMidRun >= Self.kills / 2, "only \(killedMidRun) kills landed before the run ended")
    print(
      "kill-and-resume: \(Self.kills) runs, \(killedMidRun) killed mid-run, \(identical) byte-identical after resuming")

    for point in ["finalize-files", "finalize-sums", "finalize-weights"] {
      let output = scratch.appendingPathComponent(point).path
      let killed = try CLIRunner.run(
        Self.arguments(model, output), environment: ["SAFESHARD_FAULT": "kill-at:\(point)"])
      #expect(killed.status == 9, "\(point): the injected kill did not happen")
      #expect(!FileManager.default.fileExists(atPath: output + "/model.safetensors.index.json"))
      let resumed = try CLIRunner.run(Self.arguments(model, output))
      #expect(resumed.status == 0, "\(point): \(resumed.standardError)")
      #expect(try Self.contents(of: output) == reference, "\(point): resumed output differs")
    }
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
    #expect(refused.status == 1)
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
    #expect(full.status == 1)
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
    let first = Process()
    first.executableURL = CLIRunner.executable
    first.arguments = Self.arguments(model, output).map { $0 == "4MiB" ? "1MiB" : $0 }
    first.standardOutput = FileHandle.nullDevice
    first.standardError = FileHandle.nullDevice
    try first.run()
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline, !FileManager.default.fileExists(atPath: output + "/.safeshard/state.json") {
      usleep(5_000)
    }
    let second = try CLIRunner.run(Self.arguments(model, output))
    first.waitUntilExit()
    if first.terminationStatus == 0 && second.status == 0 {
      // The first run ended before the second looked: nothing to check this time.
      return
    }
    #expect(second.status == 1)
    #expect(second.standardError.contains("another safeshard process"))
    #expect(first.terminationStatus == 0)
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
    #expect(full.status == 1)
    #expect(full.standardError.contains("No space left on device"))
    #expect(full.standardError.contains(disk))
    #expect(!FileManager.default.fileExists(atPath: output + "/SHA256SUMS"))

    #expect(Self.mount(["-o", "remount,size=64m", disk]))
    let resumed = try CLIRunner.run(KillAndResumeTests.arguments(model, output))
    #expect(resumed.status == 0, "\(resumed.standardError)")
    #expect(try KillAndResumeTests.contents(of: output) == KillAndResumeTests.contents(of: clean))
  }
}
