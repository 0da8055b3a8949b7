/// An error type that can stand for a cancellation, so that ``BlockingIOExecutor/execute(_:)``
/// keeps its caller's typed error when the task is cancelled before the work begins.
protocol ExpressibleByCancellation: Error {
  /// The error for work that a cancellation stopped before it began.
  init(cancellation: CancellationError)
}

extension CancellationError: ExpressibleByCancellation {
  init(cancellation: CancellationError) {
    self = cancellation
  }
}

extension PipelineError: ExpressibleByCancellation {
  /// A `cancelled` error whose cause is `cancellation`.
  init(cancellation: CancellationError) {
    self.init(.cancelled, "stopped before the end", cause: cancellation)
  }
}
