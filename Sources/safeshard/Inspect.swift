import ArgumentParser
import Pipeline
import SafeTensors
import TorchAO

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the tensors and metadata of a safetensors file or a model directory.",
    discussion: """
      Examples:
        safeshard inspect model.safetensors
        safeshard inspect path/to/model-dir --json
      """
  )

  @Argument(
    help:
      "A .safetensors file, a directory with model.safetensors or shards and an index, a PyTorch pickle checkpoint (pytorch_model.bin, its shards and index, or a .bin/.pt/.pth file), or a Hugging Face repository id (org/name) in the local cache."
  )
  var path: String

  @Option(help: "With a repository id: the branch, tag or commit in the cache. (default: main)")
  var revision: String?

  @Flag(help: "Print one JSON object instead of a table.")
  var json = false

  func run() throws {
    // A model quantized to FP8 or MXFP4 by another tool shows as the conversion reads it:
    // dequantized. A torchao checkpoint shows as it is stored, each weight with its scheme: how
    // it is read depends on the recipe (dequantized by those that quantize and by dequantize,
    // copied by reshard).
    let stored = try Checkpoint.input(at: ModelLocation.resolve(path, revision: revision))
    let checkpoint = TorchAOCheckpoint.hasTorchAOMetadata(stored) ? stored : try stored.dequantized()
    let report = InspectReport(checkpoint)
    writeToStandardOutput(json ? report.json() : report.table())
  }
}
