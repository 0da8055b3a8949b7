import Foundation

/// How a conversion is laid out and run; everything but the input, the output and the recipe.
public struct ConversionOptions: Sendable, Equatable {
  /// The order of tensors inside each output shard.
  public enum Layout: String, Sendable, CaseIterable {
    /// Input order: quantized parts follow their weight's place in the input, so little waits
    /// in staging.
    case input
    /// The safetensors reference writer's order (dtype descending, then name): what
    /// `save_pretrained` writes.
    case canonical
  }

  /// The largest shard in bytes of tensor data (Hugging Face's `max_shard_size`, default 5 GB).
  public var maxShardSize: Int = 5_000_000_000
  /// The memory budget in bytes for every buffer the conversion holds (default 1 GiB).
  public var memory: Int = 1 << 30
  /// The number of quantization workers (default: the number of cores).
  public var jobs: Int = ConversionOptions.defaultJobs
  /// The order of tensors inside each shard.
  public var layout: Layout = .input
  /// How spilled staging buffers are stored.
  public var spillCompression: SpillCompression = .lz4
  /// Where spill files go; `nil` means inside the output's state folder.
  public var spillDirectory: String?
  /// This process's share of the work when several processes (on several machines) convert
  /// into one output: it writes the shards whose index is `workerIndex` modulo `workerCount`.
  public var workerIndex = 0
  /// The number of processes sharing the work; 1 converts and finalises alone.
  public var workerCount = 1

  /// Whether this process writes shard `index`.
  public func owns(shard index: Int) -> Bool { index % workerCount == workerIndex }

  /// How many bytes a shard writer writes between two durable points (fsync and a journal
  /// line); a resumed run continues from the last one.
  public var commitInterval: Int = 64 << 20

  /// Creates the default options.
  public init() {}

  /// The number of active processors.
  public static var defaultJobs: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}
