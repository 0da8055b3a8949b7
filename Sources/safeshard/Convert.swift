import ArgumentParser
import Dispatch
import Foundation
import Pipeline
import SafeTensors

struct Convert: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Convert a Hugging Face model into torchao-format safetensors shards.",
    discussion: """
      INPUT is a model directory (model.safetensors, or shards and model.safetensors.index.json) \
      or one .safetensors file. OUTPUT is a new directory; it receives the shards, \
      model.safetensors.index.json, config.json with the quantization_config transformers \
      writes, the input's other files, and SHA256SUMS. Running the same command on a finished \
      OUTPUT checks it and exits 0. SIGINT and SIGTERM stop the run (exit 130 / 143); after a \
      stop or a crash the same command continues where the last durable point was, unless the \
      input, recipe or options changed (then it says what changed; --restart starts over).

      Examples:
        safeshard convert Examples/tiny-llama out/tiny-int8 --recipe int8-weight-only
        safeshard convert model/ out/ --recipe float8-dynamic --memory 4GiB --max-shard-size 2GB
        safeshard convert model/ out/ --recipe my-recipe.yaml --progress json
      """
  )

  @Argument(help: "The model directory or .safetensors file to convert.")
  var input: String

  @Argument(help: "The output directory (new, empty, or a previous run's).")
  var output: String

  @OptionGroup var flags: ConversionFlags

  @Option(
    help: "Progress report: bar (on a terminal), json (one JSON object a line), none. (default: bar on a terminal)")
  var progress: ProgressStyle?

  @Flag(help: "Discard what an unfinished earlier run left in OUTPUT and start over.")
  var restart = false

  func run() async throws {
    let checkpoint: Checkpoint
    do {
      checkpoint = try Checkpoint(path: input)
    } catch {
      throw ToolFailure("\(error)")
    }
    let (recipe, options) = try flags.resolve()
    let plan: ConversionPlan
    do {
      plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options)
    } catch {
      throw ToolFailure("\(error)")
    }
    let directory = OutputDirectory(path: output)
    let status = directory.status()
    switch status {
    case .finished:
      do {
        try await FinishedOutput(directory: directory, plan: plan).check()
      } catch {
        throw ToolFailure("\(error)")
      }
      print("\(output): already complete and matches this conversion; nothing to do")
      return
    case .foreign(let what):
      throw ToolFailure("\(output) is not empty and not a safeshard output (\(what)); choose a new directory")
    case .empty, .unfinished:
      break
    }

    let lock: RunLock
    let identity = RunIdentity(
      input: URL(fileURLWithPath: input).standardizedFileURL.path, recipe: flags.recipeReference,
      checkpoint: checkpoint,
      plan: plan)
    do {
      lock = try directory.lock(worker: options.workerIndex)
      if restart { try directory.reset() }
      if status == .unfinished, !restart, let recorded = directory.recordedIdentity() {
        let changes = identity.differences(from: recorded)
        guard changes.isEmpty else {
          throw ToolFailure(
            "\(output) holds an unfinished conversion that cannot be continued: \(changes.joined(separator: "; ")). "
              + "Run with --restart to start over.")
        }
      } else {
        try directory.record(identity)
      }
    } catch let failure as ToolFailure {
      throw failure
    } catch {
      throw ToolFailure("\(error)")
    }

    let reporter = ProgressReporter(style: progress ?? ProgressStyle.automatic)
    let inputDirectory = FileManager.default.isDirectory(input) ? input : nil
    let converter = Converter(
      checkpoint: checkpoint, plan: plan, output: directory, inputDirectory: inputDirectory, progress: reporter.report)
    let stop = SignalStop()
    let task = Task { try await converter.run() }
    stop.install { task.cancel() }
    let result = await task.result
    withExtendedLifetime(lock) {}
    reporter.close()
    switch result {
    case .success(let report) where !report.finalized:
      print(
        "\(output): worker \(options.workerIndex) of \(options.workerCount) wrote \(report.shards.count) shards; "
          + "run `safeshard finalize \(output)` when every worker is done")
    case .success(let report):
      let spilled = report.spilledBytes > 0 ? ", \(report.spilledBytes) bytes spilled" : ""
      if reporter.style != .json {
        print(
          "\(output): \(report.shards.count) shard\(report.shards.count == 1 ? "" : "s"), \(report.bytesWritten) bytes, peak buffers \(report.peakMemory) bytes\(spilled)"
        )
      }
    case .failure(let error):
      if let signal = stop.received {
        FileHandle.standardError.write(
          Data(
            "safeshard: stopped by \(signal.name); \(output) is incomplete. Run the same command again to continue.\n"
              .utf8))
        throw ExitCode(128 + signal.number)
      }
      throw ToolFailure("\(error)")
    }
  }
}

extension FileManager {
  func isDirectory(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
  }
}
