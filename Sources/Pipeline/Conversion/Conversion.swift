import Foundation
import SafeTensors

/// A conversion of one input into one output, as `safeshard convert` runs it: what `OUTPUT`
/// holds decides what happens (a finished output is checked and left alone, someone else's is
/// refused), the output's lock is taken, an unfinished run is continued only when it converts
/// the same input the same way (or discarded with `restart`), and then ``Converter`` writes what
/// is missing.
public struct Conversion: Sendable {
  /// How a run ended.
  public enum Outcome: Sendable {
    /// `OUTPUT` already held this conversion, finished; it was checked and nothing was written.
    case alreadyComplete
    /// The run wrote what was missing.
    case converted(Converter.Report)
  }

  /// The input as given: a model directory or one `.safetensors` file.
  public let input: String
  public let checkpoint: Checkpoint
  public let plan: ConversionPlan
  public let output: OutputDirectory
  /// The recipe as `state.json` records it: a built-in name, or a recipe file's absolute path.
  public let recipeReference: String

  /// A conversion of `checkpoint` (read from `input`) by `plan` into the directory `output`.
  public init(
    input: String, checkpoint: Checkpoint, plan: ConversionPlan, output: String, recipeReference: String
  ) {
    self.input = input
    self.checkpoint = checkpoint
    self.plan = plan
    self.output = OutputDirectory(path: output)
    self.recipeReference = recipeReference
  }

  /// Runs the conversion: checks a finished output, or takes the lock and converts.
  ///
  /// - Parameters:
  ///   - restart: discard what an unfinished earlier run left (every worker's), once no worker
  ///     of it is running.
  ///   - progress: called from any task with each ``ProgressEvent``.
  /// - Throws: ``PipelineError``: `outputExists` for an output that is not ours, holds another
  ///   conversion or has a damaged state; `invalidInput` when the input changed since the
  ///   unfinished run; `locked` while another process converts into it; `cancelled` when the
  ///   task was cancelled; and what ``Converter/run()`` throws.
  public func run(
    restart: Bool, progress: @escaping @Sendable (ProgressEvent) -> Void
  ) async throws(PipelineError) -> Outcome {
    let status = output.status()
    switch status {
    case .finished:
      try await FinishedOutput(directory: output, plan: plan, input: Self.isDirectory(input) ? input : nil).check()
      return .alreadyComplete
    case .foreign(let what):
      throw PipelineError(
        .outputExists, "\(output.path) is not empty and not a safeshard output (\(what)); choose a new directory",
        path: output.path)
    case .empty, .unfinished:
      break
    }
    let lock = try claim(restart: restart, unfinished: status == .unfinished)
    defer { withExtendedLifetime(lock) {} }
    FaultInjection.reach("locked")
    let converter = Converter(
      checkpoint: checkpoint, plan: plan, output: output, inputDirectory: Self.isDirectory(input) ? input : nil,
      progress: progress)
    return .converted(try await converter.run())
  }

  /// Takes this worker's lock and makes the state folder this run's: emptied with `restart`
  /// (under every worker's lock), continued when it records the same conversion, recorded when
  /// it records none.
  private func claim(restart: Bool, unfinished: Bool) throws(PipelineError) -> RunLock {
    let identity = RunIdentity(
      input: URL(fileURLWithPath: input).standardizedFileURL.path, recipe: recipeReference, checkpoint: checkpoint,
      plan: plan)
    let worker = plan.options.workerIndex
    if restart {
      // Every worker's lock, so that a restart never wipes the files of a worker that runs.
      var locks = try output.lockAll(workerCount: plan.options.workerCount)
      try output.reset()
      try output.record(identity)
      guard let own = locks.removeValue(forKey: worker) else { return try output.lock(worker: worker) }
      return own
    }
    let lock = try output.lock(worker: worker)
    guard unfinished, let recorded = try output.recordedIdentity() else {
      try output.record(identity)
      return lock
    }
    let changes = identity.differences(from: recorded)
    guard changes.isEmpty else {
      throw PipelineError(
        identity.inputFiles == recorded.inputFiles ? .outputExists : .invalidInput,
        "\(output.path) holds an unfinished conversion that cannot be continued: \(changes.joined(separator: "; ")). "
          + "Run with --restart to start over.", path: output.path)
    }
    return lock
  }

  /// Whether `path` is a directory (following links).
  static func isDirectory(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
  }
}
