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
    // Signals stop the run from the start: checking a finished output hashes every shard.
    let stop = SignalStop()
    stop.install()

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
    let conversion = Conversion(
      input: input, checkpoint: checkpoint, plan: plan, output: output, recipeReference: flags.recipeReference)
    let reporter = ProgressReporter(style: progress ?? ProgressStyle.automatic)
    let task = Task { [restart] in try await conversion.run(restart: restart, progress: reporter.report) }
    stop.onStop { task.cancel() }
    let result = await task.result
    reporter.close()
    switch result {
    case .success(.alreadyComplete):
      print("\(output): already complete and matches this conversion; nothing to do")
    case .success(.converted(let report)) where !report.finalized:
      print(
        "\(output): worker \(options.workerIndex) of \(options.workerCount) wrote \(report.shards.count) shards; "
          + "run `safeshard finalize \(output)` when every worker is done")
    case .success(.converted(let report)):
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
