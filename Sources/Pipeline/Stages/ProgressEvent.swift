/// What a running conversion reports, for a progress bar or a JSON log.
public enum ProgressEvent: Sendable, Equatable {
  /// The run starts: `totalBytes` of shard data to write in `shards` shards.
  case started(totalBytes: Int, shards: Int)
  /// A tensor's work began.
  case tensorStarted(name: String, index: Int, count: Int)
  /// `bytes` more shard data was written (`done` of the total so far).
  case wrote(bytes: Int, done: Int)
  /// A shard is complete, fsynced and in place.
  case shardFinished(fileName: String, size: Int, sha256: String)
  /// Something about an input file that does not stop the run but a user should know: a file
  /// that is not copied, a single-file input whose output gets no `config.json`.
  case fileWarning(path: String, message: String)
  /// Something about a tensor's values that the output keeps as torchao would, but a user should
  /// know: NaN or infinity in the input, rows that quantize to NaN (``ScaleFindings``).
  case warning(tensor: String, message: String)
  /// The index and the other files are written; the output is complete.
  case finished(bytes: Int, peakMemory: Int, spilledBytes: Int)
}
