import Foundation
import SafeTensors

extension Conversion {
  /// Finishes an output that several workers converted (`safeshard finalize`): makes the plan
  /// again from the input, recipe and options the workers recorded, checks that they still give
  /// the same plan, then checks every shard and writes the other files and the index
  /// (``OutputDirectory/finishWorkers(plan:input:)``). Holds every worker's lock meanwhile.
  ///
  /// - Returns: the plan the workers ran.
  /// - Throws: ``PipelineError``: `outputExists` when `output` holds no unfinished conversion;
  ///   `locked` while a worker still runs; `invalidInput` when the input or recipe cannot be read
  ///   or changed, or a shard is missing or differs.
  public static func finalizeWorkers(output path: String) throws(PipelineError) -> ConversionPlan {
    let directory = OutputDirectory(path: path)
    guard directory.status() == .unfinished, let identity = try directory.recordedIdentity() else {
      throw PipelineError(.outputExists, "\(path) has no unfinished safeshard conversion to finalize", path: path)
    }
    let locks = try directory.lockAll(workerCount: identity.workerCount)
    defer { withExtendedLifetime(locks) {} }
    let recipe: Recipe
    do {
      recipe = try Recipe.load(identity.recipe)
    } catch {
      throw PipelineError(.invalidInput, "\(error)", path: identity.recipe, cause: error)
    }
    let checkpoint: Checkpoint
    do {
      checkpoint = try Checkpoint.input(at: identity.input, dequantizing: recipe.dequantizesInput)
    } catch {
      throw PipelineError(.invalidInput, "\(error)", path: identity.input, cause: error)
    }
    var options = ConversionOptions()
    options.maxShardSize = identity.maxShardSize
    options.layout = identity.layout
    options.workerCount = identity.workerCount
    let plan = try ConversionPlan(checkpoint: checkpoint, recipe: recipe, options: options)
    let now = RunIdentity(input: identity.input, recipe: identity.recipe, checkpoint: checkpoint, plan: plan)
    let changes = now.differences(from: identity)
    guard changes.isEmpty else {
      throw PipelineError(
        .invalidInput, "the input or recipe changed since the workers ran: \(changes.joined(separator: "; "))",
        path: identity.input)
    }
    try directory.finishWorkers(plan: plan, input: isDirectory(identity.input) ? identity.input : nil)
    return plan
  }
}
