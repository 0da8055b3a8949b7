/// The durations of repeated runs of one measurement, in seconds.
struct Samples {
  private(set) var seconds: [Double] = []

  /// The first run: what a process that does the work once sees.
  var first: Double { seconds.first ?? .nan }
  /// The fastest run.
  var best: Double { seconds.min() ?? .nan }
  /// The slowest run.
  var worst: Double { seconds.max() ?? .nan }
  /// The middle run (the mean of the two middle ones for an even count).
  var median: Double {
    let sorted = seconds.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  }

  mutating func append(_ duration: Double) { seconds.append(duration) }

  /// Runs `body` once and records how long it took.
  @discardableResult
  mutating func time<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
    let start = ContinuousClock.now
    let result = try body()
    append((ContinuousClock.now - start).seconds)
    return result
  }
}

extension Duration {
  /// The duration in seconds.
  var seconds: Double {
    let (whole, fraction) = components
    return Double(whole) + Double(fraction) * 1e-18
  }
}
