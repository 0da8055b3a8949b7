import ArgumentParser
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

  @Argument(help: "A .safetensors file, or a directory with model.safetensors or shards and an index.")
  var path: String

  @Flag(help: "Print one JSON object instead of a table.")
  var json = false

  func run() throws {
    let checkpoint = try Checkpoint(path: path)
    let report = InspectReport(checkpoint)
    print(json ? report.json() : report.table(), terminator: "")
  }
}
