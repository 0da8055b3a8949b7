import ArgumentParser
import Pipeline

/// The options `convert` and `plan` share: the recipe and the layout and memory settings,
/// which override the recipe's.
struct ConversionFlags: ParsableArguments {
  @Option(help: "A built-in recipe name (see Pipelines/) or the path of a recipe YAML file.")
  var recipe: String

  @Option(help: "The largest shard, in Hugging Face units: 5GB = 5·10⁹ bytes, 4GiB = 4·2³⁰. (default: 5GB)")
  var maxShardSize: String?

  @Option(help: "The memory budget for every buffer of the run, e.g. 1GiB or 256MiB. (default: 1GiB)")
  var memory: String?

  @Option(help: "Quantization workers. (default: the number of cores)")
  var jobs: Int?

  @Option(help: "Order of tensors in each shard: input (follow the input) or canonical (the reference writer's).")
  var layout: ConversionOptions.Layout?

  @Option(help: "Where staging buffers spill when they pass the budget. (default: inside OUTPUT/.safeshard)")
  var spillDir: String?

  @Option(help: "How spilled buffers are stored: lz4 (byte planes + LZ4) or none.")
  var spillCompression: SpillCompression?

  @Option(help: "Bytes written between two durable points a resumed run continues from. (default: 64MiB)")
  var commitInterval: String?

  func validate() throws {
    if let jobs, !(1...1024).contains(jobs) { throw ValidationError("--jobs must be between 1 and 1024") }
    for (name, value) in [("--max-shard-size", maxShardSize), ("--memory", memory), ("--commit-interval", commitInterval)] {
      guard let value else { continue }
      guard let size = try? ByteSize(value) else {
        throw ValidationError("\(name) '\(value)' is not a size (\(ByteSize.syntax))")
      }
      if size.bytes < 1 { throw ValidationError("\(name) must be at least 1 byte") }
    }
  }

  /// The recipe, and the options from its settings overridden by the flags.
  func resolve() throws -> (Recipe, ConversionOptions) {
    let recipe: Recipe
    do {
      recipe = try Recipe.load(self.recipe)
    } catch {
      throw ToolFailure("\(error)")
    }
    var options = ConversionOptions()
    if let size = recipe.maxShardSize { options.maxShardSize = size }
    if let budget = recipe.memoryBudget { options.memory = budget }
    if let layout = recipe.layout { options.layout = layout }
    if let compression = recipe.spillCompression { options.spillCompression = compression }
    if let maxShardSize { options.maxShardSize = try ByteSize(maxShardSize).bytes }
    if let memory { options.memory = try ByteSize(memory).bytes }
    if let jobs { options.jobs = jobs }
    if let layout { options.layout = layout }
    if let spillDir { options.spillDirectory = spillDir }
    if let spillCompression { options.spillCompression = spillCompression }
    if let commitInterval { options.commitInterval = max(1, try ByteSize(commitInterval).bytes) }
    return (recipe, options)
  }
}

extension ConversionOptions.Layout: ExpressibleByArgument {}
extension SpillCompression: ExpressibleByArgument {}
