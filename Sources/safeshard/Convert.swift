import ArgumentParser
import Dispatch
import Foundation
import Pipeline
import SafeTensors

struct Convert: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Convert a Hugging Face model into torchao-format safetensors shards.",
    discussion: """
      INPUT is a model directory (model.safetensors, or shards and model.safetensors.index.json), \
      one .safetensors file, or a Hugging Face repository id (org/name) already in the local \
      cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub; nothing is downloaded). \
      OUTPUT is a new directory; it receives the shards, \
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

  @Argument(
    help:
      "The model directory, .safetensors file or PyTorch pickle (.bin, .pt, .pth) to convert, or a Hugging Face repository id (org/name) in the local cache."
  )
  var input: String

  @Argument(help: "The output directory (new, empty, or a previous run's).")
  var output: String

  @Option(help: "With a repository id: the branch, tag or commit in the cache. (default: main)")
  var revision: String?

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
    let reporter = ProgressReporter(style: progress ?? ProgressStyle.automatic)
    do {
      try await convert(reporter: reporter, stop: stop)
    } catch {
      if let failure = CommandFailure(error) { reporter.failed(failure) }
      throw error
    }
  }

  private func convert(reporter: ProgressReporter, stop: SignalStop) async throws {
    let input = try ModelLocation.resolve(self.input, revision: revision)
    let (recipe, options) = try flags.resolve()
    let checkpoint = try Checkpoint.input(at: input, dequantizing: recipe.dequantizesInput)
    let plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options)
    let conversion = Conversion(
      input: input, checkpoint: checkpoint, plan: plan, output: output, recipeReference: flags.recipeReference)
    let task = Task { [restart] in try await conversion.run(restart: restart, progress: reporter.report) }
    stop.onStop { task.cancel() }
    let result = await task.result
    reporter.close()
    switch result {
    case .success(.alreadyComplete):
      reporter.alreadyComplete(output)
    case .success(.converted(let report)) where !report.finalized:
      reporter.workerFinished(
        index: options.workerIndex, count: options.workerCount, shards: report.shards.count, output: output)
    case .success(.converted(let report)):
      let spilled = report.spilledBytes > 0 ? ", \(report.spilledBytes) bytes spilled" : ""
      if reporter.style != .json {
        print(
          "\(output): \(report.shards.count) shard\(report.shards.count == 1 ? "" : "s"), \(report.bytesWritten) bytes, peak buffers \(report.peakMemory) bytes\(spilled)"
        )
      }
    case .failure(let error):
      if let signal = stop.received { throw CommandFailure.stopped(by: signal, output: output) }
      throw error
    }
  }
}
