import ArgumentParser
import Foundation
import Pipeline
import SafeTensors

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
    let directory = OutputDirectory(path: output)
    guard directory.status() == .unfinished, let identity = directory.recordedIdentity() else {
      throw ToolFailure("\(output) has no unfinished safeshard conversion to finalize")
    }
    do {
      let lock = try directory.lock(worker: 0)
      defer { withExtendedLifetime(lock) {} }
      let checkpoint = try Checkpoint(path: identity.input)
      var options = ConversionOptions()
      options.maxShardSize = identity.maxShardSize
      options.layout = identity.layout
      options.workerCount = identity.workerCount
      let plan = try ConversionPlan(checkpoint: checkpoint, recipe: try Recipe.load(identity.recipe), options: options)
      let now = RunIdentity(input: identity.input, recipe: identity.recipe, checkpoint: checkpoint, plan: plan)
      let changes = now.differences(from: identity)
      guard changes.isEmpty else {
        throw ToolFailure("the input or recipe changed since the workers ran: \(changes.joined(separator: "; "))")
      }
      let inputDirectory = FileManager.default.isDirectory(identity.input) ? identity.input : nil
      try directory.finishWorkers(plan: plan, input: inputDirectory)
      print(
        "\(output): \(plan.shards.count) shard\(plan.shards.count == 1 ? "" : "s") checked; index, config and SHA256SUMS written"
      )
    } catch let failure as ToolFailure {
      throw failure
    } catch {
      throw ToolFailure("\(error)")
    }
  }
}
