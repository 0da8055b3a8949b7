import ArgumentParser
import Foundation
import Pipeline

struct Finalize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Finish an output that several workers converted: check their shards, write the index.",
    discussion: """
      After every `convert --worker-index I --worker-count N` process has finished, checks that \
      every shard of the plan is in OUTPUT with the size and SHA-256 its worker recorded, then \
      writes config.json, the input's other files, SHA256SUMS and the index, and removes the \
      state folder. The plan is made again from the input and recipe the workers recorded, so \
      they must still be readable at the same paths.

      Example:
        safeshard finalize /shared/out/llama-fp8
      """
  )

  @Argument(help: "The output directory the workers wrote into.")
  var output: String

  func run() throws {
    let plan = try Conversion.finalizeWorkers(output: output)
    print(
      "\(output): \(plan.shards.count) shard\(plan.shards.count == 1 ? "" : "s") checked; index, config and SHA256SUMS written"
    )
  }
}
