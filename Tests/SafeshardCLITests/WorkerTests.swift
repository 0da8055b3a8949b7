import Foundation
import SafeTensors
import Testing

/// Conversion spread over several processes: each writes its share of the same plan into one
/// output, `finalize` checks and completes it, and the result is byte-identical to one process.
@Suite struct WorkerTests {
  @Test(arguments: [2, 3])
  func workersAndFinalizeGiveTheBytesOfASingleRun(count: Int) throws {
    let (scratch, model) = try KillAndResumeTests.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let single = scratch.appendingPathComponent("single").path
    #expect(try CLIRunner.run(KillAndResumeTests.arguments(model, single)).status == 0)

    let shared = scratch.appendingPathComponent("shared").path
    // Workers side by side: one by flag, the others as a Slurm array and a Kubernetes Indexed Job.
    var processes: [Process] = []
    for index in 0..<count {
      let process = Process()
      process.executableURL = CLIRunner.executable
      var arguments = KillAndResumeTests.arguments(model, shared)
      var environment = ProcessInfo.processInfo.environment
      switch index {
      case 0: arguments += ["--worker-index", "0", "--worker-count", String(count)]
      case 1:
        arguments += ["--workers-from-env"]
        environment["SLURM_ARRAY_TASK_ID"] = "8"
        environment["SLURM_ARRAY_TASK_MIN"] = "7"
        environment["SLURM_ARRAY_TASK_COUNT"] = String(count)
      default:
        environment["JOB_COMPLETION_INDEX"] = String(index)
        arguments += ["--worker-count", String(count)]
      }
      process.arguments = arguments
      process.environment = environment
      process.standardOutput = FileHandle.nullDevice
      try process.run()
      processes.append(process)
    }
    for process in processes {
      process.waitUntilExit()
      #expect(process.terminationStatus == 0)
    }
    // Nothing is complete before finalize.
    #expect(!FileManager.default.fileExists(atPath: shared + "/model.safetensors.index.json"))
    let finalized = try CLIRunner.run(["finalize", shared])
    #expect(finalized.status == 0, "\(finalized.standardError)")
    #expect(try KillAndResumeTests.contents(of: shared) == KillAndResumeTests.contents(of: single))
  }

  /// A Slurm array task that converts a model of its own: the array's variables alone leave it
  /// an ordinary, complete conversion; `--workers-from-env` makes it a worker that says so.
  @Test func slurmVariablesAloneDoNotMakeAConvertAWorker() throws {
    let (scratch, model) = try KillAndResumeTests.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let slurm = ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"]
    let alone = scratch.appendingPathComponent("alone").path
    let ordinary = try CLIRunner.run(KillAndResumeTests.arguments(model, alone), environment: slurm)
    #expect(ordinary.status == 0, "\(ordinary.standardError)")
    #expect(!ordinary.standardOutput.contains("worker"))
    #expect(FileManager.default.fileExists(atPath: alone + "/model.safetensors.index.json"))
    #expect(try CLIRunner.run(["verify", alone]).status == 0)

    let shared = scratch.appendingPathComponent("shared").path
    let worker = try CLIRunner.run(
      KillAndResumeTests.arguments(model, shared) + ["--workers-from-env"], environment: slurm)
    #expect(worker.status == 0, "\(worker.standardError)")
    let last = worker.standardOutput.split(separator: "\n").last.map(String.init)
    #expect(
      last == "\(shared): worker 1 of 4 wrote 1 shard; run `safeshard finalize \(shared)` when every worker is done")
    #expect(!FileManager.default.fileExists(atPath: shared + "/model.safetensors.index.json"))
    // With --progress json the last line is a worker-finished event.
    var json = KillAndResumeTests.arguments(model, shared) + ["--workers-from-env"]
    json[json.firstIndex(of: "none")!] = "json"
    let third = try CLIRunner.run(json, environment: slurm.merging(["SLURM_ARRAY_TASK_ID": "2"]) { $1 })
    #expect(third.status == 0, "\(third.standardError)")
    let event = try JSONParser.parse(String(try #require(third.standardOutput.split(separator: "\n").last)))
    #expect(event["event"]?.string == "worker-finished")
    #expect(event["worker"]?.uint64 == 2 && event["workers"]?.uint64 == 4 && event["shards"]?.uint64 == 1)

    // A worker count without an index anywhere is refused, not taken as worker 0.
    let unplaced = try CLIRunner.run(
      KillAndResumeTests.arguments(model, scratch.appendingPathComponent("unplaced").path) + ["--worker-count", "2"])
    #expect(unplaced.status == 64)
    #expect(unplaced.standardError.contains("the worker index is not in the environment"))
  }

  @Test func finalizeRefusesWhileAWorkersShardIsMissingOrDamaged() throws {
    let (scratch, model) = try KillAndResumeTests.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let shared = scratch.appendingPathComponent("shared").path
    let worker0 = try CLIRunner.run(
      KillAndResumeTests.arguments(model, shared) + ["--worker-index", "0", "--worker-count", "2"])
    #expect(worker0.status == 0)
    #expect(worker0.standardOutput.contains("run `safeshard finalize"))
    let early = try CLIRunner.run(["finalize", shared])
    #expect(early.status == 75)
    #expect(early.standardError.contains("model-00002-of-00003.safetensors is not finished: worker 1 of 2"))

    #expect(
      try CLIRunner.run(KillAndResumeTests.arguments(model, shared) + ["--worker-index", "1", "--worker-count", "2"])
        .status == 0)
    // A shard damaged after its worker recorded it is caught.
    let shard = shared + "/model-00001-of-00003.safetensors"
    let handle = try #require(FileHandle(forUpdatingAtPath: shard))
    try handle.seek(toOffset: 50_000)
    handle.write(Data([0x55]))
    try handle.close()
    let damaged = try CLIRunner.run(["finalize", shared])
    #expect(damaged.status == 74)
    #expect(damaged.standardError.contains("differs from the"))
    #expect(!FileManager.default.fileExists(atPath: shared + "/model.safetensors.index.json"))
  }
}
