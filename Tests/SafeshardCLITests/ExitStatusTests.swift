import Foundation
import SafeTensors
import Testing

/// The exit status of each class of failure, and the `--progress json` error event that reports
/// it: what a batch scheduler acts on.
@Suite struct ExitStatusTests {
  static let tinyLlama = ConvertCommandTests.tinyLlama

  /// The `error` event of a `--progress json` run: its last line of standard output.
  static func errorEvent(_ result: CLIRunner.Result) throws -> JSONValue {
    let last = try #require(result.standardOutput.split(separator: "\n").last)
    let event = try JSONParser.parse(String(last))
    #expect(event["event"]?.string == "error")
    return event
  }

  @Test func theHelpListsTheExitStatuses() throws {
    let help = try CLIRunner.run(["--help"])
    #expect(help.status == 0)
    for status in ["0", "1", "64", "65", "74", "75"] {
      #expect(help.standardOutput.contains("\n  \(status) "), "exit status \(status) is not in --help")
    }
    #expect(help.standardOutput.contains("130  stopped by SIGINT, 143 by SIGTERM"))
  }

  @Test func aBadFlagOrAnUnknownRecipeIsAUsageError() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let flag = try CLIRunner.run(["convert", Self.tinyLlama, output, "--recipe", "int8-weight-only", "--jobs", "0"])
    #expect(flag.status == 64)
    let recipe = try CLIRunner.run(["convert", Self.tinyLlama, output, "--recipe", "int3-magic", "--progress", "json"])
    #expect(recipe.status == 64, "\(recipe.standardError)")
    let event = try Self.errorEvent(recipe)
    #expect(event["class"]?.string == "usage")
    #expect(event["code"]?.string == "not-found")
    #expect(event["errno"] == .null)
    #expect(!FileManager.default.fileExists(atPath: output))
  }

  @Test func anInvalidInputFileIsADataError() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    // A header length of 2 over a header that is not JSON.
    let input = scratch.appendingPathComponent("model.safetensors").path
    try Data([2, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "{"), UInt8(ascii: "x")]).write(to: URL(fileURLWithPath: input))
    let output = scratch.appendingPathComponent("out").path
    let result = try CLIRunner.run(["convert", input, output, "--recipe", "int8-weight-only", "--progress", "json"])
    #expect(result.status == 65, "\(result.standardError)")
    #expect(result.standardError.hasPrefix("Error: \(input): "))
    let event = try Self.errorEvent(result)
    #expect(event["class"]?.string == "invalid-input")
    #expect(event["code"]?.string == "header-json")
    #expect(event["path"]?.string == input)
    #expect(try CLIRunner.run(["inspect", input]).status == 65)
    #expect(try CLIRunner.run(["plan", input, "--recipe", "int8-weight-only"]).status == 65)
  }

  @Test func aFullDiskIsAnIOErrorWithItsErrnoInTheErrorEvent() throws {
    let (scratch, model) = try KillAndResumeTests.scratchWithModel()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    var arguments = KillAndResumeTests.arguments(model, output)
    arguments[arguments.firstIndex(of: "none")!] = "json"
    let result = try CLIRunner.run(arguments, environment: ["SAFESHARD_FAULT": "enospc-after:1000000"])
    #expect(result.status == 74, "\(result.standardError)")
    #expect(result.standardError.contains("No space left on device"))
    let event = try Self.errorEvent(result)
    #expect(event["class"]?.string == "io")
    #expect(event["code"]?.string == "io")
    #expect(event["errno"]?.uint64 == UInt64(ENOSPC))
    #expect(event["path"]?.string == output + "/.safeshard/model-00001-of-00003.safetensors.partial")
    #expect(event["message"]?.string?.contains("No space left on device") == true)
    // Every line before it is an event too.
    let lines = result.standardOutput.split(separator: "\n")
    #expect(lines.first.map { (try? JSONParser.parse(String($0)))?["event"]?.string } == "started")
  }

  @Test func anOutputWhoseParentIsAFileIsAnIOError() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let file = scratch.appendingPathComponent("file").path
    try Data("x".utf8).write(to: URL(fileURLWithPath: file))
    let result = try CLIRunner.run([
      "convert", Self.tinyLlama, file + "/out", "--recipe", "int8-weight-only", "--progress", "json",
    ])
    #expect(result.status == 74, "\(result.standardError)")
    #expect(try Self.errorEvent(result)["class"]?.string == "io")
  }

  @Test func anOutputLockedByAnotherProcessIsATemporaryFailure() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let state = output + "/.safeshard"
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    // Hold worker 0's lock as a running convert would.
    let descriptor = open(state + "/lock-0", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    #expect(descriptor >= 0)
    defer { close(descriptor) }
    #expect(flock(descriptor, LOCK_EX | LOCK_NB) == 0)
    let arguments = ["convert", Self.tinyLlama, output, "--recipe", "int8-weight-only", "--progress", "json"]
    let result = try CLIRunner.run(arguments)
    #expect(result.status == 75, "\(result.standardError)")
    #expect(result.standardError.contains("another safeshard process"))
    let event = try Self.errorEvent(result)
    #expect(event["class"]?.string == "temporary")
    #expect(event["code"]?.string == "locked")
    #expect(event["errno"]?.uint64 == UInt64(EWOULDBLOCK))
    #expect(event["path"]?.string == state + "/lock-0")
    #expect(try CLIRunner.run(["finalize", output]).status == 64)
    // Once the lock is free, the same command runs.
    flock(descriptor, LOCK_UN)
    #expect(try CLIRunner.run(arguments).status == 0)
  }

  @Test func eachJSONEventReachesAPipeWhileTheRunGoesOn() throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    let arguments = try ConvertCommandTests.slowArguments(in: scratch, output: output) + ["--progress", "json"]
    // Held after its first shard is done, the process is still running: a block-buffered stdout
    // would deliver nothing yet.
    let run = try PausedRun(arguments, pausedAt: "done:model-00001-of-00004.safetensors", scratch: scratch)
    #expect(run.waitUntilPaused())
    let received = run.readOutputLine()
    #expect(run.process.isRunning)
    let (status, errors) = run.release()
    #expect(status == 0, "\(errors)")
    let first = try #require(String(decoding: received, as: UTF8.self).split(separator: "\n").first)
    #expect(try JSONParser.parse(String(first))["event"]?.string == "started")
    let last = String(decoding: received, as: UTF8.self) + run.standardOutput()
    #expect(
      try last.split(separator: "\n").last.map { try JSONParser.parse(String($0))["event"]?.string } == "finished")
  }

  /// A quantized tensor's chunk is read by the kernel; a copied one by the shard writer.
  @Test(
    .enabled(if: MappedTensorBytes.isSupported, "elsewhere input is read with pread: no mapped: fault point"),
    arguments: [
      ("int8-weight-only", "file shrank to 0 bytes while bytes up to"), ("reshard", "it was changed while open"),
    ])
  func anInputThatShrinksWhileItsBytesAreMappedEndsTheRunWithAnIOError(recipe: String, message: String) throws {
    let scratch = try ConvertCommandTests.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    var arguments = try ConvertCommandTests.slowArguments(in: scratch, output: output)
    arguments[arguments.firstIndex(of: "int8-weight-only")!] = recipe
    let input = scratch.appendingPathComponent("model/model.safetensors").path
    // Held once the first chunk of a tensor is mapped and loaded, the file is cut to nothing: the
    // pages the kernel then reads are gone, which would be SIGBUS without the guard.
    let run = try PausedRun(arguments, pausedAt: "mapped:layers.3.proj.weight:0", scratch: scratch)
    #expect(run.waitUntilPaused())
    #expect(truncate(input, 0) == 0)
    let (status, errors) = run.release()
    #expect(status == 74, "\(errors)")
    #expect(errors.contains(input), "\(errors)")
    #expect(errors.contains("tensor 'layers."), "\(errors)")
    #expect(errors.contains(message), "\(errors)")
    let written = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
    #expect(!written.contains("SHA256SUMS") && !written.contains("model.safetensors.index.json"), "\(written)")
  }
}
