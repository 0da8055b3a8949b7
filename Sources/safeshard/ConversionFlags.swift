import ArgumentParser
import Foundation
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

  @Option(help: "This process's share of the shards, 0 ≤ I < N. (default: 0, or from the environment)")
  var workerIndex: Int?

  @Option(help: "How many processes share the work. (default: 1, or from the environment)")
  var workerCount: Int?

  @Flag(
    help: """
      Take this process's share from a Slurm array job (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of \
      SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --worker-count). \
      Without it, or --worker-count, those variables are ignored.
      """)
  var workersFromEnv = false

  func validate() throws {
    if let jobs, !(1...1024).contains(jobs) { throw ValidationError("--jobs must be between 1 and 1024") }
    for (name, value) in [
      ("--max-shard-size", maxShardSize), ("--memory", memory), ("--commit-interval", commitInterval),
    ] {
      guard let value else { continue }
      guard let size = try? ByteSize(value) else {
        throw ValidationError("\(name) '\(value)' is not a size (\(ByteSize.syntax))")
      }
      if size.bytes < 1 { throw ValidationError("\(name) must be at least 1 byte") }
    }
  }

  /// The recipe, and the options from its settings overridden by the flags.
  func resolve() throws -> (Recipe, ConversionOptions) {
    let recipe = try Recipe.load(self.recipe)
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
    (options.workerIndex, options.workerCount) = try workerShare(ProcessInfo.processInfo.environment)
    return (recipe, options)
  }
}

extension ConversionFlags {
  /// The recipe as `state.json` records it: a built-in name, or a file's absolute path (so that
  /// `finalize` finds it from any directory).
  var recipeReference: String {
    recipe.contains("/") || recipe.hasSuffix(".yaml") || recipe.hasSuffix(".yml")
      ? URL(fileURLWithPath: recipe).standardizedFileURL.path : recipe
  }

  /// This process's worker index and the worker count: from the flags, and, where a flag is
  /// missing and the environment is asked (`--workers-from-env`, or `--worker-count` without
  /// `--worker-index`), from a Slurm array job (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`,
  /// `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`). Without
  /// those flags the environment is not read: an ordinary run is worker 0 of 1.
  func workerShare(_ environment: [String: String]) throws -> (index: Int, count: Int) {
    let fromEnvironment = workersFromEnv || (workerCount != nil && workerIndex == nil)
    guard fromEnvironment else { return try Self.checked(index: workerIndex ?? 0, count: workerCount ?? 1) }
    let slurmID = environment["SLURM_ARRAY_TASK_ID"].flatMap(Int.init)
    let slurmMin = environment["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0
    let count = workerCount ?? environment["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init)
    let index = workerIndex ?? slurmID.map { $0 - slurmMin } ?? environment["JOB_COMPLETION_INDEX"].flatMap(Int.init)
    guard let index, let count else {
      throw ValidationError(
        "the worker \(index == nil ? "index" : "count") is not in the environment: give "
          + (index == nil
            ? "--worker-index, or run in a Slurm array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job "
              + "(JOB_COMPLETION_INDEX)"
            : "--worker-count, or run in a Slurm array (SLURM_ARRAY_TASK_COUNT)"))
    }
    return try Self.checked(index: index, count: count)
  }

  private static func checked(index: Int, count: Int) throws -> (index: Int, count: Int) {
    guard count >= 1, (0..<count).contains(index) else {
      throw ValidationError("the worker index must be in 0..<\(count) (worker count), it is \(index)")
    }
    return (index, count)
  }
}

extension ConversionOptions.Layout: ExpressibleByArgument {}
extension SpillCompression: ExpressibleByArgument {}
